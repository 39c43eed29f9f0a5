/**
 * Parses a static partition assignment: `all`, `none` (or empty), or a comma list of numbers and
 * inclusive ranges (`0-15,32,40-47`). Every partition must be below `partitions`.
 */
export function parsePartitionSet(spec: string, partitions: number): Set<number> {
  const s = spec.trim().toLowerCase();
  if (s === "all") return new Set(Array.from({ length: partitions }, (_, i) => i));
  const out = new Set<number>();
  if (s === "" || s === "none") return out;
  for (const raw of s.split(",")) {
    const part = raw.trim();
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m || m[1] === undefined) throw new Error(`"${part}" is not a partition or range`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new Error(`range "${part}" is reversed`);
    if (to >= partitions) throw new Error(`partition ${to} is not below ${partitions}`);
    for (let k = from; k <= to; k++) out.add(k);
  }
  return out;
}

/** Compact text of a partition set, e.g. `0-3,7`. */
export function formatPartitionSet(set: Iterable<number>): string {
  const sorted = [...set].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    const start = sorted[i] as number;
    let end = start;
    while (i + 1 < sorted.length && sorted[i + 1] === end + 1) end = sorted[++i] as number;
    parts.push(start === end ? `${start}` : `${start}-${end}`);
    i++;
  }
  return parts.join(",");
}

/** What changes between two ownerships. */
export function diffPartitions(
  current: ReadonlySet<number>,
  next: ReadonlySet<number>,
): { start: number[]; stop: number[] } {
  const start = [...next].filter((k) => !current.has(k)).sort((a, b) => a - b);
  const stop = [...current].filter((k) => !next.has(k)).sort((a, b) => a - b);
  return { start, stop };
}
