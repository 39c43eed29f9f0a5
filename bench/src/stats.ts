/** Percentile of an ascending sample (nearest-rank). */
const rankOf = (sorted: ArrayLike<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;

/** Percentile of an unsorted sample (nearest-rank). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  return rankOf(
    [...values].sort((a, b) => a - b),
    p,
  );
}

export interface Summary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Count, p50/p95/p99 and max of an unsorted sample, sorted once (NaN for an empty one). */
export function summarize(values: number[]): Summary {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => (sorted.length === 0 ? NaN : rankOf(sorted, p));
  return { count: values.length, p50: at(50), p95: at(95), p99: at(99), max: at(100) };
}

export const ms = (n: number): string => `${n.toFixed(1)} ms`;
