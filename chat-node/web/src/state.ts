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
  /** clientMsgId → a message sent and not yet confirmed. */
  pending: new Map<string, { channelId: string; body: string }>(),
  /** channel id → user id → member. */
  members: new Map<string, Map<string, Member>>(),
  users: new Map<string, UserRef>(),
  presence: new Map<string, Presence>(),
  /** channel id → user id → the timer that ends their typing. */
  typing: new Map<string, Map<string, ReturnType<typeof setTimeout>>>(),
  attachment: null as FileInfo | null,
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

/** Highest seq held without a gap (sync resumes from there). */
export function contiguous(channelId: string): number {
  const seqs = [...store(channelId).keys()].sort((a, b) => a - b);
  let top = seqs.length ? seqs[0]! - 1 : 0;
  for (const s of seqs) {
    if (s !== top + 1) break;
    top = s;
  }
  return top;
}

export function markRead(channelId: string, seq: number): void {
  const c = state.channels.get(channelId);
  if (c) {
    c.lastReadSeq = Math.max(c.lastReadSeq, seq);
    c.unread = Math.max(0, c.lastSeq - c.lastReadSeq);
  }
}

/** Adds delivered or fetched messages; returns the channels that got a new one (duplicates are dropped). */
export function addMessages(list: readonly WireMessage[]): Set<string> {
  const touched = new Set<string>();
  for (const msg of list) {
    const m = store(msg.channelId);
    if (m.has(msg.seq)) continue; // a duplicate delivery
    m.set(msg.seq, msg);
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
  }
  if (msg.senderId === me().id) c.lastReadSeq = Math.max(c.lastReadSeq, msg.seq);
  c.unread = Math.max(0, c.lastSeq - c.lastReadSeq);
}

export function titleOf(c: ChannelSummary): string {
  return c.type === "direct" ? (c.peer?.displayName ?? "direct chat") : (c.name ?? "group");
}

export const nameOf = (userId: string): string => state.users.get(userId)?.displayName ?? "someone";
