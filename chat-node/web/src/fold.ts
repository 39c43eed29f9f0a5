/**
 * The one step from a channel's stored events to the messages shown: the protocol's shared fold
 * (docs/protocol.md, "Conversations"). The client holds folded history pages and raw live or `sync`
 * events side by side; raw events inside a range a history page covered are already folded into it
 * and are left out, so an old reaction or edit is not applied twice over a newer state.
 */
import { foldEvents, kindOf, type FoldInput, type FoldedMessage } from "@vibetalk/protocol/client";

/** A message as it may arrive: a raw event (live, `sync`) or a folded one (history). */
export type WireMessage = FoldInput;

export const isPlainMessage = (m: WireMessage): boolean => kindOf(m) === "message";

const isFolded = (m: WireMessage): boolean => m.reactions !== undefined;

/** Whether `seq` lies in one of the ranges `[from, to]` history pages covered. */
export const inRanges = (seq: number, ranges: readonly (readonly [number, number])[]): boolean =>
  ranges.some(([from, to]) => seq >= from && seq <= to);

/** The messages to show, in `seq` order, from the events held for one channel (any order). */
export function foldMessages(
  events: Iterable<WireMessage>,
  covered: readonly (readonly [number, number])[] = [],
): FoldedMessage[] {
  return foldEvents([...events].filter((e) => isFolded(e) || !inRanges(e.seq, covered)));
}
