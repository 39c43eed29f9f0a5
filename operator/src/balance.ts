/**
 * Connection balance (pure): after a scale-out, WebSocket clients stay on the pods they reached, so the
 * operator asks the pods well above the average to shed a bounded part of their sockets (docs/operator.md,
 * "Connection balance"). This file decides how many, and whether a round may run at all.
 */

export interface BalanceSettings {
  /** A pod is balanced within ± this fraction of the average (0.2 = ±20 %). */
  tolerance: number;
  /** A pod sheds at most this fraction of its own sockets per round (0.2 = a fifth). */
  maxShedFraction: number;
  /**
   * The whole round sheds at most this many sockets (they reconnect over the jitter window, so this
   * bounds the reconnect rate the round causes); the pods' shares are scaled down alike. None: unbounded.
   */
  maxShedPerRound?: number;
}

export interface PodLoad {
  name: string;
  connections: number;
}

export interface ShedPlan {
  /** Connections over the pods given. */
  total: number;
  /** Connections per pod over the pods given. */
  average: number;
  /** The band [lower, upper] around the average. */
  lower: number;
  upper: number;
  /** Pod → sockets to shed this round; only pods above the band appear. */
  shed: Record<string, number>;
  /** Every pod within the band. */
  balanced: boolean;
}

/**
 * How many sockets each pod sheds this round. A pod above `average × (1 + tolerance)` sheds down towards
 * the average, never below it (the excess above the average is exactly what the pods below it lack, so
 * the round cannot overshoot the cluster), and at most `maxShedFraction` of its sockets (at least one,
 * so small pods converge too). While a pod is below `average × (1 - tolerance)` and what the pods above
 * the band shed does not cover what the pods below it lack, the pods between the average and the upper
 * bound shed the rest, each in proportion to its excess (a cluster of 1,200 / 1,200 / 1,200 / 400 has
 * no pod above the band, yet one pod lacks 600). All of them together shed at most `maxShedPerRound`
 * (scaled down alike, at least one each). The reconnects land on the pods below the average: a node
 * takes no new socket while it holds the round's average or more.
 */
export function planShed(pods: readonly PodLoad[], s: BalanceSettings): ShedPlan {
  const n = pods.length;
  const counts = pods.map((p) => ({ name: p.name, c: Math.max(0, p.connections) }));
  const total = counts.reduce((sum, p) => sum + p.c, 0);
  const average = n === 0 ? 0 : total / n;
  const lower = average * (1 - s.tolerance);
  const upper = average * (1 + s.tolerance);
  const balanced = counts.every(({ c }) => c >= lower && c <= upper);
  const shed: Record<string, number> = {};
  if (n < 2 || balanced) return { total, average, lower, upper, shed, balanced };
  const share = (c: number): number =>
    Math.min(Math.floor(c - average), Math.max(1, Math.floor(c * s.maxShedFraction)));
  for (const { name, c } of counts) {
    const k = c > upper ? share(c) : 0;
    if (k > 0) shed[name] = k;
  }
  const lacking = Math.floor(counts.reduce((sum, { c }) => sum + (c < lower ? average - c : 0), 0));
  const need = lacking - sum(shed);
  let rest = need;
  const within = counts
    .filter(({ c }) => c > average && c <= upper)
    .map(({ name, c }) => ({ name, most: share(c) }))
    .filter(({ most }) => most > 0);
  const excess = within.reduce((sum, { most }) => sum + most, 0);
  for (const { name, most } of within) {
    if (rest <= 0) break;
    const k = Math.min(rest, most, Math.max(1, Math.floor((need * most) / excess)));
    shed[name] = k;
    rest -= k;
  }
  const planned = sum(shed);
  const cap = s.maxShedPerRound;
  if (cap !== undefined && planned > cap) {
    for (const [pod, k] of Object.entries(shed)) shed[pod] = Math.max(1, Math.floor((k * cap) / planned));
  }
  return { total, average, lower, upper, shed, balanced };
}

const sum = (shares: Record<string, number>): number => Object.values(shares).reduce((a, b) => a + b, 0);

/** What stops a round: rounds run only on a settled cluster (no drain, no rollout, no pod on its way). */
export interface ClusterState {
  /** The Deployment's desired replicas (spec), its observed/desired generation, updated and ready counts. */
  desiredReplicas: number;
  generation: number;
  observedGeneration: number;
  updatedReplicas: number;
  /** Pods of the cluster that exist (terminating ones included). */
  pods: readonly {
    name: string;
    ready: boolean;
    terminating: boolean;
    /** Its `vibetalk.io/readiness` names `draining`. */
    draining: boolean;
    /** Its pod-template-hash label. */
    templateHash: string;
  }[];
}

/** Why no round may run now, or undefined when one may. */
export function blockedBy(state: ClusterState): string | undefined {
  const { pods } = state;
  if (state.observedGeneration < state.generation) return "the Deployment has a change not yet observed";
  const terminating = pods.filter((p) => p.terminating).map((p) => p.name);
  if (terminating.length > 0) return `pods terminating (draining): ${terminating.join(", ")}`;
  const draining = pods.filter((p) => p.draining).map((p) => p.name);
  if (draining.length > 0) return `pods draining: ${draining.join(", ")}`;
  if (new Set(pods.map((p) => p.templateHash)).size > 1)
    return "a rollout is in progress (two pod templates)";
  if (state.updatedReplicas < state.desiredReplicas) return "a rollout is in progress";
  if (pods.length !== state.desiredReplicas)
    return `${pods.length} pods exist, the Deployment wants ${state.desiredReplicas}`;
  const notReady = pods.filter((p) => !p.ready).map((p) => p.name);
  if (notReady.length > 0) return `pods not Ready: ${notReady.join(", ")}`;
  if (pods.length < 2) return "fewer than two pods";
  return undefined;
}

/** The previous round is taken as landed once the connections are back to this share of its total. */
export const LANDED_SHARE = 0.95;

/**
 * Milliseconds until the next round may run (0: now): at least `intervalSeconds` after the previous one,
 * and, until three intervals have passed, only once the connections are back to `LANDED_SHARE` of the
 * previous round's total (its shed sockets reconnected: an average computed while they are in flight is
 * too low and would shed too much). Clients that leave for good delay a round by two intervals at most.
 */
export function msUntilNextRound(
  previous: { at: string; total?: number } | undefined,
  intervalSeconds: number,
  now: Date,
  total: number,
): number {
  if (previous === undefined) return 0;
  const at = Date.parse(previous.at);
  if (Number.isNaN(at)) return 0;
  const interval = intervalSeconds * 1000;
  const elapsed = now.getTime() - at;
  // a previous round stamped far ahead of this clock (another instance's) does not block for ever
  if (elapsed < -interval) return 0;
  const wait = interval - Math.max(0, elapsed);
  if (wait > 0) return wait;
  const landing = previous.total !== undefined && total < previous.total * LANDED_SHARE;
  if (!landing) return 0;
  const giveUp = 3 * interval - elapsed;
  return giveUp > 0 ? Math.min(giveUp, 2000) : 0;
}
