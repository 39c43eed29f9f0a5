// The web client's pure logic (chat-node/web/src): what it shows of a channel's events.
import assert from "node:assert/strict";
import { test } from "node:test";
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
