/** The client's state: what it holds of channels, messages, members, users, presence and typing. */
import { PREVIEW_CHARS } from "@vibetalk/protocol/client";
import type { ChannelSummary, FileInfo, Member, Presence, User } from "@vibetalk/protocol/client";
import { isPlainMessage, type WireMessage } from "./fold.js";

export type UserRef = Pick<User, "id" | "username" | "displayName">;

export const session = {
  token: localStorage.getItem("vt.token") as string | null,
  me: null as UserRef | null,
};

export const state = {
  channels: new Map<string, ChannelSummary>(),
  nextCursor: null as string | null,
  /** The open channel's id. */
  current: null as string | null,
  /** channel id → seq → event. */
  messages: new Map<string, Map<number, WireMessage>>(),
  /** channel id → the seq ranges history pages covered (their events are folded into the page). */
  covered: new Map<string, [number, number][]>(),
  /** The message being replied to in the open chat (the quote bar above the composer). */
  replyTo: null as { seq: number; senderId: string; body: string } | null,
  /** clientMsgId → a message sent and not yet confirmed. */
  pending: new Map<string, { channelId: string; body: string }>(),
  /** channel id → user id → member. */
  members: new Map<string, Map<string, Member>>(),
  users: new Map<string, UserRef>(),
  presence: new Map<string, Presence>(),
  /** channel id → user id → the timer that ends their typing. */
  typing: new Map<string, Map<string, ReturnType<typeof setTimeout>>>(),
  attachment: null as FileInfo | null,
  /**
   * channel id → seq → `receipt:counts` for my message `seq` in a large channel (docs/protocol.md,
   * "Large channels"); my earlier messages there have at least those counts.
   */
  receiptCounts: new Map<string, Map<number, { delivered: number; read: number }>>(),
};

export function me(): UserRef {
  if (!session.me) throw new Error("not logged in");
  return session.me;
}

export function store(channelId: string): Map<number, WireMessage> {
  let m = state.messages.get(channelId);
  if (!m) {
    m = new Map();
    state.messages.set(channelId, m);
  }
  return m;
}

/** A history page's range: its events are folded into its messages (fold.ts). */
export function addCovered(channelId: string, fromSeq: number, toSeq: number): void {
  if (fromSeq < 1) return;
  const list = state.covered.get(channelId) ?? [];
  list.push([fromSeq, toSeq]);
  state.covered.set(channelId, list);
}

/** Highest seq held without a gap (sync resumes from there): held events and covered ranges. */
export function contiguous(channelId: string): number {
  const spans: [number, number][] = [...store(channelId).keys()].map((s) => [s, s]);
  spans.push(...(state.covered.get(channelId) ?? []));
  spans.sort((a, b) => a[0] - b[0]);
  let top = spans.length ? spans[0]![0] - 1 : 0;
  for (const [from, to] of spans) {
    if (from > top + 1) break;
    top = Math.max(top, to);
  }
  return top;
}

export function markRead(channelId: string, seq: number): void {
  const c = state.channels.get(channelId);
  if (c) {
    c.lastReadSeq = Math.max(c.lastReadSeq, seq);
    c.unread = Math.max(0, c.lastSeq - c.lastReadSeq);
    if (c.unread === 0) c.mentions = 0;
  }
}

/** Adds delivered or fetched messages; returns the channels that got a new one (duplicates are dropped). */
export function addMessages(list: readonly WireMessage[]): Set<string> {
  const touched = new Set<string>();
  for (const msg of list) {
    const m = store(msg.channelId);
    const held = m.get(msg.seq);
    // A duplicate delivery is dropped; a folded copy (a history page) replaces what was held.
    if (held && msg.reactions === undefined) continue;
    m.set(msg.seq, msg);
    if (held) continue;
    state.pending.delete(msg.clientMsgId);
    touched.add(msg.channelId);
    const c = state.channels.get(msg.channelId);
    if (c && msg.seq > c.lastSeq) advanceHead(c, msg);
  }
  return touched;
}

function advanceHead(c: ChannelSummary, msg: WireMessage): void {
  c.lastSeq = msg.seq;
  if (isPlainMessage(msg)) {
    c.lastMessage = {
      seq: msg.seq,
      senderId: msg.senderId,
      body: msg.body.slice(0, PREVIEW_CHARS),
      hasFiles: msg.fileIds.length > 0,
      createdAt: msg.createdAt,
    };
    c.lastMessageAt = msg.createdAt;
  } else if (c.lastMessage && msg.targetSeq === c.lastMessage.seq && !c.lastMessage.deleted) {
    // An edit or delete of the message the preview shows changes the preview, as the server's does.
    if (msg.kind === "edit")
      c.lastMessage = { ...c.lastMessage, body: msg.body.slice(0, PREVIEW_CHARS), edited: true };
    if (msg.kind === "delete") c.lastMessage = { ...c.lastMessage, body: "", hasFiles: false, deleted: true };
  }
  if (msg.senderId === me().id) c.lastReadSeq = Math.max(c.lastReadSeq, msg.seq);
  c.unread = Math.max(0, c.lastSeq - c.lastReadSeq);
}

export function titleOf(c: ChannelSummary): string {
  return c.type === "direct" ? (c.peer?.displayName ?? "direct chat") : (c.name ?? "group");
}

export const nameOf = (userId: string): string => state.users.get(userId)?.displayName ?? "someone";
