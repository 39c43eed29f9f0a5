// Where a ramp (ramp.ts) reaches its knee: the first step whose send→deliver p99 passes the limit (NaN or
// Infinity, a step with deliveries missing, counts as past it) or that accepts under a share of its offered rate.

export interface KneeStep {
  offeredRate: number;
  acceptedRate: number;
  sendToDeliver: { p99: number };
}

export interface KneeLimits {
  /** send→deliver p99 limit, ms. */
  p99LimitMs: number;
  /** Least share of the offered rate accepted (0.9). */
  acceptedShare: number;
}

/** Is this step past the knee. */
export function pastKnee(s: KneeStep, o: KneeLimits): boolean {
  return !(s.sendToDeliver.p99 <= o.p99LimitMs) || s.acceptedRate < o.acceptedShare * s.offeredRate;
}

/**
 * The first step past the knee (−1: none) and the knee rate: the offered rate of the step before it, or of
 * the last step when none was past it (a lower bound then), 0 when the first step was already past it.
 */
export function kneeOf(steps: KneeStep[], o: KneeLimits): { kneeIndex: number; kneeRate: number } {
  const i = steps.findIndex((s) => pastKnee(s, o));
  const last = i < 0 ? steps.at(-1) : steps[i - 1];
  return { kneeIndex: i, kneeRate: last?.offeredRate ?? 0 };
}
