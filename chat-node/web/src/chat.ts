/**
 * What the client does with channels and messages: list and open chats, take live events, resume with
 * `sync` after a reconnect (docs/protocol.md, "Delivery, order and resuming").
 */
import { DEFAULT_LIMITS } from "@vibetalk/protocol/client";
import type {
  ChannelDetailsReply,
  ChannelEvent,
  ChannelsReply,
  MessagesReply,
  ReceiptCountsEvent,
  ReceiptEvent,
  TypingEvent,
} from "@vibetalk/protocol/client";
import { cancelReply, ui } from "./actions.js";
import { api, enc } from "./api.js";
import { $ } from "./dom.js";
import { isPlainMessage, type WireMessage } from "./fold.js";
import { emit, isConnected } from "./socket.js";
import { addCovered, addMessages, contiguous, markRead, me, state, store } from "./state.js";
import { notifyMessage } from "./notify.js";
import { renderChannels } from "./views/channels.js";
import { renderGroupPanel } from "./views/group.js";
import { renderHeader } from "./views/header.js";
import { renderMessages } from "./views/messages.js";

const PAGE = DEFAULT_LIMITS.defaultPageLimit;

export function renderAll(): void {
  renderChannels();
  renderHeader();
  renderMessages();
  renderGroupPanel();
}

export async function loadChannels(reset: boolean): Promise<void> {
  const q = reset || !state.nextCursor ? "" : `?cursor=${enc(state.nextCursor)}`;
  const r = await api<ChannelsReply>("GET", `/channels${q}`);
  if (reset) state.channels.clear();
  for (const c of r.channels) {
    state.channels.set(c.id, c);
    if (c.peer) state.users.set(c.peer.id, c.peer);
  }
  state.nextCursor = r.nextCursor;
  $("more-channels").hidden = !r.nextCursor;
  renderChannels();
}

/** Back to the chat list alone (on a phone's width the conversation view closes: decision 52). */
export function closeChannel(): void {
  state.current = null;
  $("composer").hidden = true;
  $("chat-note").hidden = true;
  $("older").hidden = true;
  $("messages").replaceChildren();
  $("app").classList.remove("in-chat");
  renderAll();
}

export function onChannelEvent({ channel, change }: ChannelEvent): void {
  if (change === "removed") {
    state.channels.delete(channel.id);
    if (state.current === channel.id) closeChannel();
    renderAll();
    return;
  }
  const prev = state.channels.get(channel.id);
  if (prev) {
    const lastSeq = Math.max(prev.lastSeq, channel.lastSeq);
    Object.assign(prev, channel, {
      lastSeq,
      lastMessage: prev.lastSeq > channel.lastSeq ? prev.lastMessage : channel.lastMessage,
      unread: Math.max(0, lastSeq - prev.lastReadSeq),
    });
  } else void loadChannels(true).then(subscribePresence);
  if (channel.id === state.current) void loadMembers(channel.id).then(() => renderAll());
  renderChannels();
  renderHeader();
}

export function onMessage(msg: WireMessage): void {
  const m = store(msg.channelId);
  const gap = m.size > 0 && msg.seq > Math.max(...m.keys()) + 1;
  const touched = addMessages([msg]);
  if (!state.channels.has(msg.channelId)) void loadChannels(true);
  if (gap) void syncChannels([msg.channelId]);
  if (touched.size === 0) return;
  if (isPlainMessage(msg)) notifyMessage(msg);
  const c = state.channels.get(msg.channelId);
  if (c && msg.channelId !== state.current && msg.kind !== "reaction" && msg.mentions?.includes(me().id))
    c.mentions += 1;
  if (msg.senderId !== me().id) {
    const visible = msg.channelId === state.current && document.visibilityState === "visible";
    void emit("receipt", { channelId: msg.channelId, seq: msg.seq, kind: visible ? "read" : "delivered" });
    if (visible) markRead(msg.channelId, msg.seq);
  }
  renderChannels();
  if (msg.channelId === state.current) renderMessages();
}

export async function syncChannels(ids: string[]): Promise<void> {
  const channels = ids.map((id) => ({ channelId: id, afterSeq: contiguous(id) }));
  for (let i = 0; i < channels.length; i += DEFAULT_LIMITS.maxSyncChannels) {
    const r = await emit("sync", { channels: channels.slice(i, i + DEFAULT_LIMITS.maxSyncChannels) });
    if (!r.ok) continue;
    addMessages(r.messages);
    if (r.more.length) await syncChannels(r.more);
  }
  renderChannels();
  if (state.current && ids.includes(state.current)) renderMessages();
}

export function syncAll(): Promise<void> {
  const known = [...state.messages.keys()].filter((id) => state.channels.has(id));
  return known.length ? syncChannels(known) : Promise.resolve();
}

export async function openChannel(id: string): Promise<void> {
  state.current = id;
  cancelReply();
  ui.menu = ui.editing = null;
  $("app").classList.add("in-chat");
  const summary = state.channels.get(id);
  // The official group with posting for admins: members read it, the composer would only be refused.
  const readOnly =
    summary?.type === "official" && summary.posting !== "everyone" && summary.role === "member";
  $("composer").hidden = readOnly;
  $("chat-note").hidden = !readOnly;
  $("chat-error").textContent = "";
  const m = store(id);
  if (m.size === 0) {
    addPage(id, await api<MessagesReply>("GET", `/channels/${enc(id)}/messages?limit=${PAGE}`));
  } else {
    await syncChannels([id]);
  }
  await loadMembers(id);
  const c = state.channels.get(id);
  if (c) c.lastSeq = Math.max(c.lastSeq, ...store(id).keys());
  if (c && c.lastSeq > c.lastReadSeq) {
    void emit("receipt", { channelId: id, seq: c.lastSeq, kind: "read" });
    markRead(id, c.lastSeq);
  }
  renderAll();
  renderMessages(true);
  $("body").focus();
}

export async function loadOlder(): Promise<void> {
  const id = state.current;
  if (!id) return;
  // Page by the seq range the pages held (a page of PAGE seqs may hold fewer messages: events).
  const ranges = state.covered.get(id) ?? [];
  const first = Math.min(...store(id).keys(), ...ranges.map(([from]) => from));
  const r = await api<MessagesReply>("GET", `/channels/${enc(id)}/messages?beforeSeq=${first}&limit=${PAGE}`);
  addPage(id, r);
  renderMessages();
}

/** A history page: its folded messages, its covered range; older ones exist while it starts above 1. */
function addPage(id: string, r: MessagesReply): void {
  addCovered(id, r.fromSeq, r.toSeq);
  addMessages(r.messages);
  $("older").hidden = r.fromSeq <= 1;
}

export async function loadMembers(id: string): Promise<void> {
  const r = await api<ChannelDetailsReply>("GET", `/channels/${enc(id)}`);
  state.members.set(id, new Map(r.members.map((m) => [m.userId, m])));
  for (const m of r.members)
    state.users.set(m.userId, { id: m.userId, username: m.username, displayName: m.displayName });
  const c = state.channels.get(id);
  // The stored head may lag live messages by a moment: never move backwards.
  if (c)
    Object.assign(c, r.channel, {
      lastSeq: Math.max(c.lastSeq, r.channel.lastSeq),
      lastMessage: c.lastSeq > r.channel.lastSeq ? c.lastMessage : r.channel.lastMessage,
    });
}

export function onReceipt(r: ReceiptEvent): void {
  const m = state.members.get(r.channelId)?.get(r.userId);
  if (m) {
    if (r.kind === "read") m.lastReadSeq = Math.max(m.lastReadSeq, r.seq);
    m.lastDeliveredSeq = Math.max(m.lastDeliveredSeq, r.seq);
  }
  if (r.userId === me().id && r.kind === "read") {
    markRead(r.channelId, r.seq);
    renderChannels();
  }
  if (r.channelId === state.current) renderMessages();
}

/** A large channel's counts for my message `seq`: kept as the highest seen for that seq. */
export function onReceiptCounts({ channelId, seq, delivered, read }: ReceiptCountsEvent): void {
  let m = state.receiptCounts.get(channelId);
  if (!m) {
    m = new Map();
    state.receiptCounts.set(channelId, m);
  }
  const held = m.get(seq);
  m.set(seq, { delivered: Math.max(delivered, held?.delivered ?? 0), read: Math.max(read, held?.read ?? 0) });
  if (channelId === state.current) renderMessages();
}

export function onTyping({ channelId, userId, typing }: TypingEvent): void {
  let m = state.typing.get(channelId);
  if (!m) {
    m = new Map();
    state.typing.set(channelId, m);
  }
  clearTimeout(m.get(userId));
  if (typing)
    m.set(
      userId,
      setTimeout(() => onTyping({ channelId, userId, typing: false }), 6000),
    );
  else m.delete(userId);
  renderHeader();
}

export function subscribePresence(): void {
  if (!isConnected()) return;
  const peers = [...state.channels.values()]
    .flatMap((c) => (c.peer ? [c.peer.id] : []))
    .slice(0, DEFAULT_LIMITS.maxPresenceUserIds);
  void emit("presence:subscribe", { userIds: peers }).then((r) => {
    if (!r.ok) return;
    for (const p of r.presence) state.presence.set(p.userId, p);
    renderChannels();
    renderHeader();
  });
}

/** Back in view: what arrived meanwhile in the open chat is read now. */
export function onVisible(): void {
  const c = state.current ? state.channels.get(state.current) : undefined;
  if (document.visibilityState === "visible" && c && c.lastSeq > c.lastReadSeq) {
    void emit("receipt", { channelId: c.id, seq: c.lastSeq, kind: "read" });
    markRead(c.id, c.lastSeq);
    renderChannels();
  }
}

/** Mutes or unmutes the open chat (PUT/DELETE /channels/:id/mute); unread still counts. */
export async function toggleMute(): Promise<void> {
  const c = state.current ? state.channels.get(state.current) : undefined;
  if (!c) return;
  const muted = !c.muted;
  await api(muted ? "PUT" : "DELETE", `/channels/${enc(c.id)}/mute`);
  c.muted = muted;
  renderChannels();
  renderHeader();
}
