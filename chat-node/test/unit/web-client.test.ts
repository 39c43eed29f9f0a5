// The web client's pure logic (chat-node/web/src): what it shows of a channel's events, the day
// separators, and which group controls each role gets.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mayChangeRole, mayManage, mayRemove, type Role } from "@vibetalk/protocol/client";
import { dayKey, dayLabel, withDays } from "../../web/src/dates.js";
import { foldMessages, type WireMessage } from "../../web/src/fold.js";

function event(seq: number, extra: Partial<WireMessage> = {}): WireMessage {
  return {
    id: `c1:${seq}`,
    channelId: "c1",
    seq,
    senderId: "0123456789abcdef01234567",
    clientMsgId: `m${seq}`,
    body: `body ${seq}`,
    fileIds: [],
    createdAt: new Date(Date.UTC(2026, 0, 1, 12, seq)).toISOString(),
    ...extra,
  } as WireMessage;
}

test("the fold shows plain messages in seq order and leaves out events without a target among them", () => {
  const events = [
    event(3),
    event(1),
    event(4, { kind: "edit", body: "" }),
    event(2, { kind: "message" }),
    event(5, { kind: "reaction", body: "" }),
    event(6, { kind: "delete", body: "" }),
  ];
  assert.deepEqual(
    foldMessages(events).map((m) => m.seq),
    [1, 2, 3],
  );
  assert.deepEqual(foldMessages([]), []);
});

test("the fold applies live events over a folded history page, not the raw events the page covered", () => {
  const ben = "0123456789abcdef0123456b";
  const page = {
    ...event(1),
    edited: null,
    deleted: null,
    reactions: [] as { emoji: string; userIds: string[] }[],
    quote: null,
  };
  // Seq 2 (Ben's 👍 on) and 3 (off) are in the page's range 1-3: its state (no reaction) stands.
  const on2 = event(2, { kind: "reaction", targetSeq: 1, emoji: "👍", on: true, senderId: ben, body: "" });
  const [shown] = foldMessages([page, on2], [[1, 3]]);
  assert.deepEqual(shown?.reactions, []);
  // A later edit and reaction (seq 4, 5) arrive live and apply on top.
  const edit4 = event(4, { kind: "edit", targetSeq: 1, body: "changed" });
  const on5 = event(5, { kind: "reaction", targetSeq: 1, emoji: "👍", on: true, senderId: ben, body: "" });
  const [live] = foldMessages([page, on2, edit4, on5], [[1, 3]]);
  assert.equal(live?.edited?.body, "changed");
  assert.deepEqual(live?.reactions, [{ emoji: "👍", userIds: [ben] }]);
  // Without the range, the raw seq-2 reaction would count: the range is what keeps it out.
  assert.deepEqual(foldMessages([page, on2])[0]?.reactions, [{ emoji: "👍", userIds: [ben] }]);
});

test("day separators: one before the first message of each local day; Today, Yesterday, else the date", () => {
  const now = new Date(2026, 4, 20, 9, 0);
  const at = (d: number, h: number): { createdAt: string } => ({
    createdAt: new Date(2026, 4, d, h).toISOString(),
  });
  const items = [at(12, 23), at(19, 8), at(19, 22), at(20, 0), at(20, 8)];
  const out = withDays(items, now);
  assert.deepEqual(
    out.map((e) => ("item" in e ? "msg" : e.label)),
    [dayLabel(items[0]!.createdAt, now), "msg", "Yesterday", "msg", "msg", "Today", "msg", "msg"],
  );
  assert.ok(!["Today", "Yesterday"].includes(dayLabel(items[0]!.createdAt, now)));
  assert.equal(dayKey(new Date(2026, 0, 5, 23, 59)), "2026-01-05");
  // Another year's date carries the year.
  assert.match(dayLabel(new Date(2025, 11, 31, 12).toISOString(), now), /2025/);
  assert.deepEqual(withDays([], now), []);
});

test("group controls by role follow docs/protocol.md (Roles)", () => {
  const roles: Role[] = ["owner", "admin", "member"];
  assert.deepEqual(roles.map(mayManage), [true, true, false]);
  const grid = (f: (a: Role, t: Role) => boolean): string[] =>
    roles.map((a) => roles.map((t) => (f(a, t) ? "y" : "-")).join(""));
  // rows: the actor; columns: the target (owner, admin, member)
  assert.deepEqual(grid(mayChangeRole), ["-yy", "---", "---"]);
  assert.deepEqual(grid(mayRemove), ["yyy", "--y", "---"]);
});
