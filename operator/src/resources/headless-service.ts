/** The headless Service: per-pod DNS and the scrape target of the ServiceMonitor (pure). */
import type { V1Service } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import { CHAT_NODE_PORT, objectMeta, ownedNames, selectorLabels } from "./meta.js";

export function buildHeadlessService(cluster: ChatCluster): V1Service {
  const name = cluster.metadata.name;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: objectMeta(cluster, ownedNames(name).headlessService, "chat-node", {
      "vibetalk.io/service": "headless",
    }),
    spec: {
      clusterIP: "None",
      publishNotReadyAddresses: true,
      selector: selectorLabels(name),
      ports: [{ name: "http", port: CHAT_NODE_PORT, targetPort: "http", protocol: "TCP" }],
    },
  };
}
