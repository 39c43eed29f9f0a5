/** The HorizontalPodAutoscaler on live connections (pure); absent when autoscaling is off. */
import type { V2HorizontalPodAutoscaler } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import { objectMeta, ownedNames } from "./meta.js";

export const CONNECTIONS_METRIC = "vibetalk_connections";
/** The label the HPA selects the external metric by; its value is the ChatCluster's name. */
export const METRIC_CLUSTER_LABEL = "cluster";

type Policy = { type: "Pods" | "Percent"; value: number; periodSeconds: number };
/** Scale-up: double or +4 pods every 15 s, whichever is more (the Kubernetes default, at once). */
export const DEFAULT_SCALE_UP_POLICIES: readonly Policy[] = [
  { type: "Percent", value: 100, periodSeconds: 15 },
  { type: "Pods", value: 4, periodSeconds: 15 },
];
/** Scale-down: one pod a minute, so the sockets of each drained pod land before the next goes. */
export const DEFAULT_SCALE_DOWN_POLICIES: readonly Policy[] = [{ type: "Pods", value: 1, periodSeconds: 60 }];

type Rules = ChatCluster["spec"]["autoscaling"]["behavior"]["scaleUp"];
const rules = (r: Rules | undefined, window: number, policies: readonly Policy[]) => ({
  stabilizationWindowSeconds: r?.stabilizationWindowSeconds ?? window,
  selectPolicy: r?.selectPolicy ?? "Max",
  policies: (r?.policies?.length ? r.policies : policies).map((p) => ({ ...p })),
});

export function buildHpa(cluster: ChatCluster): V2HorizontalPodAutoscaler | undefined {
  const { autoscaling } = cluster.spec;
  if (!autoscaling.enabled) return undefined;
  const names = ownedNames(cluster.metadata.name);
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: objectMeta(cluster, names.hpa, "chat-node"),
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: names.deployment },
      minReplicas: autoscaling.minReplicas,
      maxReplicas: autoscaling.maxReplicas,
      behavior: {
        scaleUp: rules(autoscaling.behavior?.scaleUp, 0, DEFAULT_SCALE_UP_POLICIES),
        scaleDown: rules(autoscaling.behavior?.scaleDown, 600, DEFAULT_SCALE_DOWN_POLICIES),
      },
      metrics: [
        {
          type: "External",
          external: {
            metric: {
              name: CONNECTIONS_METRIC,
              selector: { matchLabels: { [METRIC_CLUSTER_LABEL]: cluster.metadata.name } },
            },
            target: { type: "AverageValue", averageValue: String(autoscaling.targetConnectionsPerPod) },
          },
        },
      ],
    },
  };
}
