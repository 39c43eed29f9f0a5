/** The client-facing chat-node Service (pure). */
import type { V1Service } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import { objectMeta, ownedNames, selectorLabels } from "./meta.js";

/** Socket.IO falls back to long-polling, whose requests must reach the same pod: ClientIP affinity. */
export const SESSION_AFFINITY_TIMEOUT_SECONDS = 10800;

export function buildClientService(cluster: ChatCluster): V1Service {
  const name = cluster.metadata.name;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: objectMeta(cluster, ownedNames(name).service, "chat-node", { "vibetalk.io/service": "client" }),
    spec: {
      type: cluster.spec.service.type,
      selector: selectorLabels(name),
      ports: [{ name: "http", port: cluster.spec.service.port, targetPort: "http", protocol: "TCP" }],
      sessionAffinity: "ClientIP",
      sessionAffinityConfig: { clientIP: { timeoutSeconds: SESSION_AFFINITY_TIMEOUT_SECONDS } },
    },
  };
}
