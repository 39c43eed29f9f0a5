/**
 * The headless Service: per-pod DNS and the scrape target of the ServiceMonitor (pure). It alone
 * names the operations port `ops`; the client Service never exposes it.
 */
import type { V1Service } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import { CHAT_NODE_OPS_PORT, CHAT_NODE_PORT, objectMeta, ownedNames, selectorLabels } from "./meta.js";

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
      ports: [
        { name: "http", port: CHAT_NODE_PORT, targetPort: "http", protocol: "TCP" },
        { name: "ops", port: CHAT_NODE_OPS_PORT, targetPort: "ops", protocol: "TCP" },
      ],
    },
  };
}
