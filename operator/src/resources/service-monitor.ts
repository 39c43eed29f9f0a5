/** A Prometheus-operator ServiceMonitor for the chat-nodes (pure); absent unless enabled. */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import { objectMeta, ownedNames } from "./meta.js";

export interface ServiceMonitor extends KubernetesObject {
  spec: {
    selector: { matchLabels: Record<string, string> };
    endpoints: { port: string; path: string; interval: string }[];
  };
}

export function buildServiceMonitor(cluster: ChatCluster): ServiceMonitor | undefined {
  const sm = cluster.spec.metrics.serviceMonitor;
  if (!sm.enabled) return undefined;
  const name = cluster.metadata.name;
  const meta = objectMeta(cluster, ownedNames(name).serviceMonitor, "chat-node", sm.labels ?? {});
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "ServiceMonitor",
    metadata: meta,
    spec: {
      selector: {
        matchLabels: {
          "app.kubernetes.io/instance": name,
          "app.kubernetes.io/component": "chat-node",
          "vibetalk.io/service": "headless",
        },
      },
      endpoints: [{ port: "ops", path: "/metrics", interval: sm.interval }],
    },
  };
}
