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

test("the fold shows plain messages in seq order and leaves out other kinds of event", () => {
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
