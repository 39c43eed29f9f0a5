/**
 * Conversation actions on a message (docs/protocol.md, "Conversations"): edit, delete, react and
 * reply. Each is one acked socket event under a fresh clientMsgId; a refusal shows its message
 * under the chat, and the change itself arrives as an event in the channel's log like any message.
 */
import type { FoldedMessage } from "@vibetalk/protocol/client";
import { $ } from "./dom.js";
import { emit } from "./socket.js";
import { me, state } from "./state.js";

/** The emoji offered for reactions (data; their buttons are labelled, for a browser without glyphs). */
export const REACTIONS = ["👍", "❤️", "😂", "🎉", "😮"] as const;

/** What the message list has open: the actions menu of one message, or one message being edited. */
export const ui = {
  menu: null as number | null,
  editing: null as number | null,
  /** The edit box's text while editing. */
  draft: null as string | null,
};

type Ack = { ok: true } | { ok: false; error: { code: string; message: string } };

function shown(r: Ack): boolean {
  if (!r.ok) $("chat-error").textContent = `${r.error.message} (${r.error.code})`;
  else $("chat-error").textContent = "";
  return r.ok;
}

const base = (m: FoldedMessage) => ({
  channelId: m.channelId,
  clientMsgId: crypto.randomUUID(),
  targetSeq: m.seq,
});

export async function editMessage(m: FoldedMessage, body: string): Promise<boolean> {
  return shown(await emit("message:edit", { ...base(m), body }));
}

export async function deleteMessage(m: FoldedMessage): Promise<boolean> {
  return shown(await emit("message:delete", base(m)));
}

/** Toggles this user's `emoji` on the message. */
export async function toggleReaction(m: FoldedMessage, emoji: string): Promise<boolean> {
  const on = !m.reactions.some((r) => r.emoji === emoji && r.userIds.includes(me().id));
  return shown(await emit("message:react", { ...base(m), emoji, on }));
}

/** Own messages; in a group also others' for its owners and admins. */
export function mayDelete(m: FoldedMessage): boolean {
  if (m.senderId === me().id) return true;
  const c = state.channels.get(m.channelId);
  return c !== undefined && c.type !== "direct" && (c.role === "owner" || c.role === "admin");
}

export function startReply(m: FoldedMessage): void {
  state.replyTo = { seq: m.seq, senderId: m.senderId, body: m.edited?.body ?? m.body };
  renderReplyBar();
  $("body").focus();
}

export function cancelReply(): void {
  state.replyTo = null;
  renderReplyBar();
}

export function renderReplyBar(): void {
  const r = state.replyTo;
  $("reply-bar").hidden = r === null;
  const name = r ? (state.users.get(r.senderId)?.displayName ?? "someone") : "";
  $("reply-text").textContent = r ? `replying to ${name}: ${r.body}` : "";
}
