/**
 * Push notifications, the pure part (docs/chat-node.md, "Push notifications"): who a stored message
 * notifies, the retry schedule, and the payloads sent to a push gateway and by Web Push.
 */
import { PREVIEW_CHARS } from "@vibetalk/protocol";
import type { MemberRecord, PresenceState, PushDeviceRecord } from "../ports.js";
import type { StoredMessage } from "./messages.js";

/**
 * The members a stored message may notify, before presence and the interval: a plain message only
 * (no edit, delete or reaction), every member but the sender, except those who muted the channel —
 * a mention of a member notifies them even so (decision 59).
 */
export function pushCandidates(m: StoredMessage, members: readonly MemberRecord[]): MemberRecord[] {
  if (m.kind !== undefined) return [];
  const mentioned = new Set(m.mentions ?? []);
  return members.filter((x) => x.userId !== m.senderId && (!x.muted || mentioned.has(x.userId)));
}

/** The users of `userIds` that no node holds now (PresenceStore.get's answer, one call for them all). */
export function offlineUsers(userIds: readonly string[], presence: readonly PresenceState[]): string[] {
  const online = new Set(presence.filter((p) => p.online).map((p) => p.userId));
  return userIds.filter((u) => !online.has(u));
}

/** The interval key of a user and channel (PushThrottle). */
export const throttleKey = (userId: string, channelId: string): string => `${userId}:${channelId}`;

/**
 * The wait before retry `attempt` (1 = the first retry): `baseMs · 2^(attempt−1)`, with up to a
 * quarter more at random (`jitter` in [0, 1)) so that retries of many notifications spread out.
 */
export function retryDelayMs(attempt: number, baseMs: number, jitter = 0): number {
  const d = baseMs * 2 ** Math.max(0, attempt - 1);
  return Math.round(d * (1 + jitter / 4));
}

/** What a notification says: the message, its sender and the recipient's unread count. */
export interface PushContent {
  message: StoredMessage;
  senderName: string;
  /** The recipient's unread count in the channel, this message included. */
  unread: number;
}

/** The preview a notification carries: the body cut to PREVIEW_CHARS, or a note for files only. */
export function pushBody(m: StoredMessage): string {
  const chars = [...m.body];
  if (chars.length === 0 && m.fileIds.length > 0) return "sent a file";
  return chars.length > PREVIEW_CHARS ? `${chars.slice(0, PREVIEW_CHARS - 1).join("")}…` : m.body;
}

/**
 * A push gateway request, in the shape of the Matrix push gateway API's `/notify`: one
 * notification for all of a user's gateway devices (docs/protocol.md, "Push notifications").
 */
export function gatewayRequest(c: PushContent, devices: readonly PushDeviceRecord[]): object {
  return {
    notification: {
      event_id: c.message.id,
      seq: c.message.seq,
      room_id: c.message.channelId,
      type: "vibetalk.message",
      sender: c.message.senderId,
      sender_display_name: c.senderName,
      content: { body: pushBody(c.message) },
      counts: { unread: c.unread },
      devices: devices.flatMap((d) =>
        d.kind === "gateway" ? [{ app_id: d.appId, pushkey: d.pushKey }] : [],
      ),
    },
  };
}

/** A Web Push payload: small JSON for the service worker (the push service bounds it to ~4 KiB). */
export function webPushPayload(c: PushContent): string {
  return JSON.stringify({
    channelId: c.message.channelId,
    seq: c.message.seq,
    senderName: c.senderName,
    body: pushBody(c.message),
    unread: c.unread,
  });
}
