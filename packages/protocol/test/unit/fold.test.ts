import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { foldEvents, FoldedMessageSchema, MessageSchema, type Message } from "../../src/index.js";

const C = "0123456789abcdef01234567";
const A = "a".repeat(24);
const B = "b".repeat(24);
const at = (seq: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString();

function ev(seq: number, senderId: string, extra: Partial<Message> = {}): Message {
  return {
    channelId: C,
    seq,
    id: `${C}:${String(seq).padStart(12, "0")}`,
    senderId,
    clientMsgId: `c${seq}`,
    body: extra.body ?? `m${seq}`,
    fileIds: [],
    createdAt: at(seq),
    ...extra,
  };
}

test("plain messages fold to themselves with empty state; old data without kind reads as a message", () => {
  const out = foldEvents([ev(2, B), ev(1, A)]);
  assert.deepEqual(
    out.map((m) => [m.seq, m.body, m.edited, m.deleted, m.reactions, m.quote]),
    [
      [1, "m1", null, null, [], null],
      [2, "m2", null, null, [], null],
    ],
  );
  for (const m of out) FoldedMessageSchema.parse(m);
});

test("edits: the author's latest by seq wins; another user's edit is ignored", () => {
  const out = foldEvents([
    ev(1, A),
    ev(3, A, { kind: "edit", targetSeq: 1, body: "second", mentions: [B] }),
    ev(2, A, { kind: "edit", targetSeq: 1, body: "first" }),
    ev(4, B, { kind: "edit", targetSeq: 1, body: "not yours" }),
  ]);
  assert.equal(out.length, 1);
  assert.deepEqual(out[0]?.edited, { body: "second", editedAt: at(3), versionSeq: 3, mentions: [B] });
  assert.equal(out[0]?.body, "m1");
});

test("delete: a tombstone; body, files, edits, reactions and later events are gone", () => {
  const out = foldEvents([
    ev(1, A, { fileIds: [B], mentions: [B] }),
    ev(2, A, { kind: "edit", targetSeq: 1, body: "edited" }),
    ev(3, B, { kind: "reaction", targetSeq: 1, emoji: "👍", on: true }),
    ev(4, A, { kind: "delete", targetSeq: 1, body: "" }),
    ev(5, B, { kind: "reaction", targetSeq: 1, emoji: "🎉", on: true }),
  ]);
  const m = out[0];
  assert.ok(m);
  assert.deepEqual(
    { body: m.body, fileIds: m.fileIds, edited: m.edited, reactions: m.reactions, mentions: m.mentions },
    { body: "", fileIds: [], edited: null, reactions: [], mentions: undefined },
  );
  assert.deepEqual(m.deleted, { seq: 4, by: A, deletedAt: at(4) });
});

test("reactions: toggles per user and emoji, sorted by emoji and user; explicit on/off", () => {
  const out = foldEvents([
    ev(1, A),
    ev(2, B, { kind: "reaction", targetSeq: 1, emoji: "👍", on: true }),
    ev(3, A, { kind: "reaction", targetSeq: 1, emoji: "👍", on: true }),
    ev(4, A, { kind: "reaction", targetSeq: 1, emoji: "❤", on: true }),
    ev(5, A, { kind: "reaction", targetSeq: 1, emoji: "❤", on: false }),
    ev(6, B, { kind: "reaction", targetSeq: 1, emoji: "👍", on: true }),
    ev(7, A, { kind: "reaction", targetSeq: 1, emoji: "a", on: false }),
  ]);
  assert.deepEqual(out[0]?.reactions, [{ emoji: "👍", userIds: [A, B] }]);
});

test("a reply quotes its target as it reads now (edited, deleted) when the target is folded too", () => {
  const long = "x".repeat(300);
  const out = foldEvents([
    ev(1, A, { body: long }),
    ev(2, B, { replyTo: 1 }),
    ev(3, A),
    ev(4, B, { replyTo: 3 }),
    ev(5, A, { kind: "delete", targetSeq: 3 }),
    ev(6, B, { replyTo: 99 }),
    ev(7, A, { kind: "edit", targetSeq: 1, body: "short" }),
  ]);
  const bySeq = new Map(out.map((m) => [m.seq, m]));
  assert.deepEqual(bySeq.get(2)?.quote, {
    seq: 1,
    senderId: A,
    body: "short",
    hasFiles: false,
    deleted: false,
  });
  assert.deepEqual(bySeq.get(4)?.quote, { seq: 3, senderId: A, body: "", hasFiles: false, deleted: true });
  assert.equal(bySeq.get(6)?.quote, null);
  assert.equal(bySeq.get(6)?.replyTo, 99);
});

test("events whose target is not among the inputs, or not earlier, are left out", () => {
  const out = foldEvents([
    ev(5, A, { kind: "edit", targetSeq: 1, body: "x" }),
    ev(6, A),
    ev(7, A, { kind: "edit", targetSeq: 8, body: "future" }),
    ev(8, A),
    ev(9, A, { kind: "edit", targetSeq: 7, body: "of an edit" }),
  ]);
  assert.deepEqual(
    out.map((m) => [m.seq, m.edited]),
    [
      [6, null],
      [8, null],
    ],
  );
});

// ---- properties -----------------------------------------------------------------------------

const users = [A, B, "c".repeat(24)];
const eventArb = fc.record({
  kind: fc.constantFrom("message", "message", "edit", "delete", "reaction", "reaction", "reaction"),
  sender: fc.constantFrom(...users),
  target: fc.nat({ max: 30 }),
  emoji: fc.constantFrom("👍", "❤", "🎉"),
  on: fc.boolean(),
  body: fc.string({ maxLength: 5 }),
});

/** A channel's log: seq 1..n, each event targeting an earlier seq. */
const logArb = fc.array(eventArb, { minLength: 1, maxLength: 40 }).map((xs) =>
  xs.map((x, i): Message => {
    const seq = i + 1;
    if (x.kind === "message" || seq === 1)
      return ev(seq, x.sender, { body: x.body, ...(x.target % 3 === 0 && seq > 1 ? { replyTo: 1 } : {}) });
    const targetSeq = (x.target % (seq - 1)) + 1;
    if (x.kind === "reaction")
      return ev(seq, x.sender, { kind: "reaction", targetSeq, emoji: x.emoji, on: x.on, body: "" });
    return ev(seq, x.sender, { kind: x.kind as "edit" | "delete", targetSeq, body: x.body });
  }),
);

test("property: folding depends only on the set of events (any order, any repeats)", () => {
  fc.assert(
    fc.property(logArb, fc.infiniteStream(fc.nat()), (log, rnd) => {
      const shuffled = [...log, ...log.slice(0, rnd.next().value % log.length)]
        .map((e) => ({ e, k: rnd.next().value }))
        .sort((a, b) => a.k - b.k)
        .map(({ e }) => e);
      assert.deepEqual(foldEvents(shuffled), foldEvents(log));
      for (const e of log) MessageSchema.parse(e);
    }),
  );
});

test("property: folding a folded prefix with the later events equals folding everything", () => {
  fc.assert(
    fc.property(logArb, fc.nat(), (log, cutAt) => {
      const cut = cutAt % (log.length + 1);
      const later = foldEvents([...foldEvents(log.slice(0, cut)), ...log.slice(cut)]);
      const all = foldEvents(log);
      assert.deepEqual(later, all);
      assert.deepEqual(foldEvents(all), all);
    }),
  );
});
