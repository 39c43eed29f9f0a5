import { PREVIEW_CHARS } from "./limits.js";
import type { Deleted, Edited, FoldedMessage, Message, MessageKind } from "./types.js";

/**
 * Folding: a channel is a log of events, each with its own `seq` — plain messages, and the edits,
 * deletes and reactions that target one of them by `targetSeq` (docs/protocol.md, "Conversations").
 * `foldEvents` turns any set of them into the plain messages with their edits, tombstone, reactions
 * and quoted message applied. It is pure, used by the chat-node for history and by clients for
 * `sync` and live `message` events alike.
 */

/** An event's kind: absent means a plain message (data stored before kinds existed). */
export function kindOf(m: { kind?: MessageKind | undefined }): MessageKind {
  return m.kind ?? "message";
}

/** A body cut to PREVIEW_CHARS characters (code points), with an ellipsis when cut. */
export function previewOf(body: string): string {
  const chars = Array.from(body);
  return chars.length <= PREVIEW_CHARS ? body : `${chars.slice(0, PREVIEW_CHARS - 1).join("")}…`;
}

/** An input of `foldEvents`: a raw event, or a message folded before (its state is the base). */
export type FoldInput = Message & Partial<Pick<FoldedMessage, "edited" | "deleted" | "reactions" | "quote">>;

interface State {
  msg: FoldInput;
  edited: Edited | null;
  deleted: Deleted | null;
  /** emoji → user ids */
  reactions: Map<string, Set<string>>;
}

const key = (channelId: string, seq: number) => `${channelId}\u0000${seq}`;
const isFolded = (m: FoldInput) => m.reactions !== undefined;

/**
 * Folds events into plain messages, in (channelId, seq) order. The rules:
 * - an event applies to the plain message of its channel with `seq = targetSeq` (an earlier seq);
 *   events whose target is not among the inputs are left out (the target's own page folds them);
 * - edit: only the author's count; the one with the highest seq gives `edited`;
 * - delete: a tombstone; body, files, mentions, edits, reactions and quote are dropped;
 * - reaction: per (user, emoji) the one with the highest seq decides (`on` adds, else removes);
 * - a plain message with `replyTo` gets `quote` when the quoted message is among the inputs.
 * The result depends only on the set of events (not their order, nor repeats of one). A message
 * folded before may be given again with newer events: they are applied on top of its state.
 */
export function foldEvents(events: readonly FoldInput[]): FoldedMessage[] {
  const bySeq = new Map<string, FoldInput>();
  for (const e of events) {
    const k = key(e.channelId, e.seq);
    const cur = bySeq.get(k);
    // One seq is one event: a folded copy carries more than the raw one.
    if (!cur || (!isFolded(cur) && isFolded(e))) bySeq.set(k, e);
  }
  const sorted = [...bySeq.values()].sort((a, b) =>
    a.channelId === b.channelId ? a.seq - b.seq : a.channelId < b.channelId ? -1 : 1,
  );
  const states = new Map<string, State>();
  for (const m of sorted) {
    if (kindOf(m) !== "message") continue;
    const reactions = new Map<string, Set<string>>();
    for (const r of m.reactions ?? []) reactions.set(r.emoji, new Set(r.userIds));
    states.set(key(m.channelId, m.seq), {
      msg: m,
      edited: m.edited ?? null,
      deleted: m.deleted ?? null,
      reactions,
    });
  }
  for (const e of sorted) {
    if (kindOf(e) === "message" || e.targetSeq === undefined || e.targetSeq >= e.seq) continue;
    const t = states.get(key(e.channelId, e.targetSeq));
    if (t && !t.deleted) apply(t, e);
  }
  return [...states.values()].map((s) => render(s, states));
}

/** Applies one edit, delete or reaction to the state of its (not deleted) target. */
function apply(t: State, e: FoldInput): void {
  const kind = kindOf(e);
  if (kind === "edit") {
    if (e.senderId !== t.msg.senderId || (t.edited && t.edited.versionSeq >= e.seq)) return;
    t.edited = { body: e.body, editedAt: e.createdAt, versionSeq: e.seq, mentions: e.mentions ?? [] };
  } else if (kind === "delete") {
    t.deleted = { seq: e.seq, by: e.senderId, deletedAt: e.createdAt };
  } else if (e.emoji !== undefined) {
    const users = t.reactions.get(e.emoji) ?? new Set<string>();
    if (e.on) users.add(e.senderId);
    else users.delete(e.senderId);
    t.reactions.set(e.emoji, users);
  }
}

function render(s: State, states: Map<string, State>): FoldedMessage {
  const { edited: _e, deleted: _d, reactions: _r, quote: baseQuote, mentions, ...rest } = s.msg;
  if (s.deleted) {
    return { ...rest, body: "", fileIds: [], edited: null, deleted: s.deleted, reactions: [], quote: null };
  }
  const reactions = [...s.reactions]
    .filter(([, users]) => users.size > 0)
    .map(([emoji, users]) => ({ emoji, userIds: [...users].sort() }))
    .sort((a, b) => (a.emoji < b.emoji ? -1 : a.emoji > b.emoji ? 1 : 0));
  let quote = baseQuote ?? null;
  const q = s.msg.replyTo === undefined ? undefined : states.get(key(s.msg.channelId, s.msg.replyTo));
  if (q) {
    quote = {
      seq: q.msg.seq,
      senderId: q.msg.senderId,
      body: q.deleted ? "" : previewOf(q.edited?.body ?? q.msg.body),
      hasFiles: !q.deleted && q.msg.fileIds.length > 0,
      deleted: q.deleted !== null,
    };
  }
  return {
    ...rest,
    ...(mentions !== undefined ? { mentions } : {}),
    edited: s.edited,
    deleted: null,
    reactions,
    quote,
  };
}
