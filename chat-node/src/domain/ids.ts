import { MAX_SEQ } from "@vibetalk/protocol";

export const SEQ_DIGITS = 12;

/** `<channelId>:<seq zero-padded to 12 digits>` — the message's primary key. */
export function messageId(channelId: string, seq: number): string {
  if (!Number.isInteger(seq) || seq < 0 || seq > MAX_SEQ) throw new RangeError(`seq out of range: ${seq}`);
  return `${channelId}:${String(seq).padStart(SEQ_DIGITS, "0")}`;
}

export function parseMessageId(id: string): { channelId: string; seq: number } | null {
  const i = id.lastIndexOf(":");
  if (i <= 0 || id.length - i - 1 !== SEQ_DIGITS) return null;
  const digits = id.slice(i + 1);
  if (!/^\d+$/.test(digits)) return null;
  return { channelId: id.slice(0, i), seq: Number(digits) };
}

/**
 * Bounds of the message ids of one channel: every id `x` of the channel has `lower <= x < upper`
 * and no other channel's id does (channel ids never contain `:`; `;` follows `:`).
 */
export function messageIdRange(channelId: string): { lower: string; upper: string } {
  return { lower: `${channelId}:`, upper: `${channelId};` };
}

/** The id of the direct channel of two users: the same for either order. */
export function directChannelId(a: string, b: string): string {
  return a < b ? `dm_${a}_${b}` : `dm_${b}_${a}`;
}

export function isDirectChannelId(id: string): boolean {
  return id.startsWith("dm_");
}

/** The two users of a direct channel id, or null. */
export function directChannelUsers(id: string): [string, string] | null {
  const m = /^dm_([a-f0-9]{24})_([a-f0-9]{24})$/.exec(id);
  return m && m[1] !== undefined && m[2] !== undefined ? [m[1], m[2]] : null;
}

/** Member documents are keyed by channel and user. */
export function memberKey(channelId: string, userId: string): string {
  return `${channelId}|${userId}`;
}
