import { createHash } from "node:crypto";
import { MAX_SEQ } from "@vibetalk/protocol";
import type { PushTarget } from "../ports.js";

export const SEQ_DIGITS = 12;

/** `<channelId>:<seq zero-padded to 12 digits>` — the message's primary key. */
export function messageId(channelId: string, seq: number): string {
  if (!Number.isInteger(seq) || seq < 0 || seq > MAX_SEQ) throw new RangeError(`seq out of range: ${seq}`);
  return `${channelId}:${String(seq).padStart(SEQ_DIGITS, "0")}`;
}

/** The id of the direct channel of two users: the same for either order. */
export function directChannelId(a: string, b: string): string {
  return a < b ? `dm_${a}_${b}` : `dm_${b}_${a}`;
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

/**
 * A push device's id: 24 hex digits of SHA-256 over the user and the device's key (appId and pushKey,
 * or the Web Push endpoint), so registering the same device again on any node finds the same record.
 */
export function pushDeviceId(userId: string, target: PushTarget): string {
  const key =
    target.kind === "gateway" ? `gateway\n${target.appId}\n${target.pushKey}` : `webpush\n${target.endpoint}`;
  return createHash("sha256").update(`${userId}\n${key}`).digest("hex").slice(0, 24);
}
