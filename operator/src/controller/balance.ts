/**
 * The balance step of a reconcile (docs/operator.md, "Connection balance"; decision 36): from the pods'
 * `vibetalk.io/connections` annotations, the pods well above the average are told, through the key
 * `balance.json` of `<name>-partitions` (which every chat-node already reads), how many sockets to shed.
 * At most one round per `spec.rebalance.intervalSeconds`, the interval kept in the ConfigMap itself (an
 * operator restart or a new leader keeps it), and none while a pod drains, a rollout runs or a pod is
 * on its way.
 */
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import { BALANCE_KEY, decodeBalanceRound, encodeBalanceRound } from "@vibetalk/protocol/cluster";
import type { Logger } from "pino";
import type { ChatCluster } from "../api/v1alpha1.js";
import { blockedBy, msUntilNextRound, planShed, type ClusterState } from "../balance.js";
import type { OperatorMetrics } from "../metrics.js";
import { ANNOTATION_READINESS, ownedNames } from "../resources/meta.js";
import { podConnections } from "./connections.js";
import { errorMessage, isConflict } from "./errors.js";
import { isPodReady } from "./pods.js";
import type { ClusterApi, Clock, EventRecorder } from "./ports.js";

/** The balance settings with their defaults (an old CRD may not default them). */
export function rebalanceSettings(cluster: ChatCluster) {
  const r = cluster.spec.rebalance as Partial<ChatCluster["spec"]["rebalance"]> | undefined;
  const jitterSeconds = r?.jitterSeconds ?? 5;
  return {
    enabled: r?.enabled ?? false,
    tolerance: (r?.tolerancePercent ?? 20) / 100,
    maxShedFraction: (r?.maxShedPercent ?? 20) / 100,
    intervalSeconds: Math.max(r?.intervalSeconds ?? 15, jitterSeconds + 5),
    jitterSeconds,
    // the round's reconnects are spread over the jitter window: bound their rate
    maxShedPerRound: (r?.maxReconnectsPerSecond ?? 50) * Math.max(1, jitterSeconds),
  };
}

/** The facts that may block a round, from the Deployment and the pod list. */
export function clusterState(deployment: V1Deployment | undefined, pods: readonly V1Pod[]): ClusterState {
  return {
    desiredReplicas: deployment?.spec?.replicas ?? 0,
    generation: deployment?.metadata?.generation ?? 0,
    observedGeneration: deployment?.status?.observedGeneration ?? 0,
    updatedReplicas: deployment?.status?.updatedReplicas ?? 0,
    pods: pods
      // a pod that ended (evicted, completed) is no longer on its way anywhere: its replacement counts
      .filter((p) => p.status?.phase !== "Failed" && p.status?.phase !== "Succeeded")
      .map((p) => ({
        name: p.metadata?.name ?? "",
        ready: isPodReady(p),
        terminating: Boolean(p.metadata?.deletionTimestamp),
        draining: (p.metadata?.annotations?.[ANNOTATION_READINESS] ?? "").split(",").includes("draining"),
        templateHash: p.metadata?.labels?.["pod-template-hash"] ?? "",
      })),
  };
}

export interface BalanceDeps {
  api: ClusterApi;
  events: EventRecorder;
  metrics: OperatorMetrics;
  log: Logger;
  clock: Clock;
}

/**
 * Runs a balance round when one is due and allowed; returns when to look again (ms), or undefined when
 * nothing waits (off, or balanced: the pods' annotation changes bring the next reconcile).
 */
export async function balanceConnections(
  d: BalanceDeps,
  cluster: ChatCluster,
  deployment: V1Deployment | undefined,
  pods: readonly V1Pod[],
): Promise<number | undefined> {
  const s = rebalanceSettings(cluster);
  if (!s.enabled) return undefined;
  const { namespace, name } = cluster.metadata;
  const clusterKey = `${namespace}/${name}`;
  if (blockedBy(clusterState(deployment, pods)) !== undefined) return undefined;
  // the Ready pods (not blocked: every pod still on its way is; an ended one is left out)
  const plan = planShed(
    pods.filter(isPodReady).map((p) => ({ name: p.metadata?.name ?? "", connections: podConnections(p) })),
    s,
  );
  // balanced, or only pods below the band (they fill from new connections): nothing to publish
  if (Object.keys(plan.shed).length === 0) return undefined;
  const cmName = ownedNames(name).partitionsConfigMap;
  const cm = await d.api.getConfigMap(namespace, cmName);
  const rv = cm?.metadata?.resourceVersion;
  if (!cm || !rv) return undefined;
  const previous = decodeBalanceRound(cm.data?.[BALANCE_KEY]);
  const now = d.clock.now();
  const wait = msUntilNextRound(previous, s.intervalSeconds, now, plan.total);
  if (wait > 0) return wait;
  const round = {
    round: (previous?.round ?? 0) + 1,
    at: now.toISOString(),
    // the shedding pods refuse new sockets above the average until then: while the shed sockets land
    // (as long as the next round may wait for them), and not for long if the operator goes away
    expiresAt: new Date(now.getTime() + 3 * s.intervalSeconds * 1000).toISOString(),
    windowMs: s.jitterSeconds * 1000,
    average: Math.round(plan.average * 10) / 10,
    shed: plan.shed,
    total: plan.total,
  };
  try {
    await d.api.patchConfigMapData(namespace, cmName, { [BALANCE_KEY]: encodeBalanceRound(round) }, rv);
  } catch (err) {
    if (isConflict(err)) return 1000; // the assignment moved meanwhile: look again shortly
    // balance is an optimisation: a failed write must not fail the reconcile that published the rest
    d.log.warn(
      { event: "balance.write_failed", cluster: clusterKey, err: errorMessage(err) },
      "could not publish the balance round",
    );
    return 5000;
  }
  const asked = Object.values(plan.shed).reduce((a, b) => a + b, 0);
  d.metrics.balanceRounds.inc({ cluster: clusterKey });
  d.metrics.socketsShedRequested.inc({ cluster: clusterKey }, asked);
  const list = Object.entries(plan.shed)
    .map(([pod, n]) => `${pod} ${n}`)
    .join(", ");
  d.events.record(
    cluster,
    "Normal",
    "ShedConnections",
    "Rebalance",
    `Round ${round.round}: ${Math.round(plan.average)} connections per pod on average (band ${Math.floor(plan.lower)}-${Math.ceil(plan.upper)}); asked to shed: ${list}.`,
  );
  d.log.info(
    {
      event: "balance.round",
      cluster: clusterKey,
      round: round.round,
      average: round.average,
      lower: Math.floor(plan.lower),
      upper: Math.ceil(plan.upper),
      shed: plan.shed,
      asked,
    },
    "connection balance round",
  );
  return s.intervalSeconds * 1000;
}
