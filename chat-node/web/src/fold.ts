/**
 * The one step from a channel's stored events to the messages shown. Today every event is a plain
 * message; conversation events (edits, deletions, reactions: `kind` other than "message") are being
 * added to the protocol, and until the client renders them this step leaves them out rather than
 * showing them as empty bubbles. The later change swaps this for the protocol's shared fold.
 */
import type { Message } from "@vibetalk/protocol/client";

/** A message as it may arrive: `kind` absent means a plain message (docs/protocol.md). */
export type WireMessage = Message & { kind?: string };

export const isPlainMessage = (m: WireMessage): boolean => (m.kind ?? "message") === "message";

/** The messages to show, in `seq` order, from the events held for one channel (any order). */
export function foldMessages(events: Iterable<WireMessage>): Message[] {
  return [...events].filter(isPlainMessage).sort((a, b) => a.seq - b.seq);
}
