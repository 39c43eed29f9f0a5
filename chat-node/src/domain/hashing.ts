/** 32-bit FNV-1a over the UTF-8 bytes of a string: stable across processes, versions and languages. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  const bytes = new TextEncoder().encode(s);
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The partition of a channel: `hash(channelId) mod P`. */
export function partitionOf(channelId: string, partitions: number): number {
  return fnv1a32(channelId) % partitions;
}

/** The user exchange of a user: `hash(userId) mod U`. */
export function userExchangeOf(userId: string, userExchanges: number): number {
  return fnv1a32(userId) % userExchanges;
}
