// Edits, deletes, reactions, replies, mentions, blocks and mutes in ChatService on the in-memory fakes
// (docs/protocol.md, "Conversations"): every refusal with its code, what is published, what a delete
// removes from the store, and the folded history page.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ErrorCode } from "@vibetalk/protocol";
import { partitionOf } from "../../src/domain/hashing.js";
import { directChannelId, messageId } from "../../src/domain/ids.js";
import type { AcceptedMessage, StoredMessage } from "../../src/domain/messages.js";
import type { PartitionDelivery } from "../../src/ports.js";
import { toErrorInfo } from "../../src/transport/errors.js";
import { message } from "../support/contracts/store.js";
import { FakeCluster, type FakeNode } from "../support/fakes/cluster.js";

async function refused(p: Promise<unknown>, code: ErrorCode, details?: unknown): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    const { info } = toErrorInfo(e);
    assert.equal(info.code, code, `expected ${code}, got ${info.code}: ${info.message}`);
    if (details !== undefined) assert.deepEqual(info.details, details);
    return true;
  });
}

const HOUR = 3_600_000;

/** A stored message or event, sent an hour ago (within the default edit window). */
function stored(
  channelId: string,
  seq: number,
  senderId: string,
  extra: Partial<StoredMessage> = {},
): StoredMessage {
  return {
    ...message(channelId, seq, senderId, `m${seq}`),
    createdAt: new Date(Date.now() - HOUR + seq),
    ...extra,
  };
}

/** A group of owner, admin, member and a direct channel of owner and member; messages 1-3 by the member. */
async function world(env: Record<string, string> = {}) {
  const c = new FakeCluster(env);
  const a = await c.node();
  const s = a.service;
  const mk = async (n: string) =>
    (await c.store.createUser({ username: n, displayName: n, passwordHash: "-" })).id;
  const [O, AD, M, X] = [await mk("olga"), await mk("adam"), await mk("mia"), await mk("xavi")];
  const g = (await s.createChannel(O, { type: "group", name: "g", memberIds: [AD, M] })).channel.id;
  await s.setRole(O, g, AD, "admin");
  const dm = (await s.createChannel(O, { type: "direct", userId: M })).channel.id;
  await c.store.insertOrdered([
    stored(g, 1, M, { fileIds: [] }),
    stored(g, 2, M),
    stored(g, 3, O, { createdAt: new Date(Date.now() - 25 * HOUR) }),
    stored(g, 4, M, { kind: "reaction", targetSeq: 1, emoji: "👍", on: true, body: "" }),
  ]);
  await c.store.insertOrdered([stored(dm, 1, M)]);
  return { c, a, s, O, AD, M, X, g, dm };
}

async function published(a: FakeNode, channelId: string, n: number): Promise<AcceptedMessage[]> {
  const got: PartitionDelivery[] = [];
  const sub = await a.broker.subscribePartition(partitionOf(channelId, a.config.partitions), 100, (d) =>
    got.push(d),
  );
  for (let i = 0; i < 100 && got.length < n; i++) await new Promise((r) => setImmediate(r));
  await sub.close();
  assert.equal(got.length, n, "published events");
  return got.map((d) => {
    const { sentAt: _s, ...m } = d.message as AcceptedMessage;
    return { ...m, sentAt: 0 };
  });
}

test("edit: the author within the window; others FORBIDDEN, late EDIT_WINDOW_CLOSED, bad targets", async () => {
  const { a, s, O, M, X, g } = await world();
  await s.edit(M, { channelId: g, clientMsgId: "e1", targetSeq: 1, body: "fixed @olga @nobody @xavi" });
  await refused(s.edit(O, { channelId: g, clientMsgId: "e2", targetSeq: 1, body: "mine?" }), "FORBIDDEN");
  await refused(
    s.edit(O, { channelId: g, clientMsgId: "e3", targetSeq: 3, body: "late" }),
    "EDIT_WINDOW_CLOSED",
  );
  await refused(s.edit(M, { channelId: g, clientMsgId: "e4", targetSeq: 9, body: "x" }), "NOT_FOUND", {
    field: "targetSeq",
  });
  await refused(s.edit(M, { channelId: g, clientMsgId: "e5", targetSeq: 4, body: "x" }), "INVALID_ARGUMENT", {
    field: "targetSeq",
  });
  await refused(s.edit(X, { channelId: g, clientMsgId: "e6", targetSeq: 1, body: "x" }), "FORBIDDEN");
  assert.deepEqual(await published(a, g, 1), [
    {
      channelId: g,
      senderId: M,
      clientMsgId: "e1",
      body: "fixed @olga @nobody @xavi",
      fileIds: [],
      sentAt: 0,
      targetSeq: 1,
      kind: "edit",
      mentions: [O],
    },
  ]);
});

test("the edit window is LIMIT_EDIT_WINDOW_SECONDS", async () => {
  const { s, M, g } = await world({ LIMIT_EDIT_WINDOW_SECONDS: "60" });
  await refused(
    s.edit(M, { channelId: g, clientMsgId: "e1", targetSeq: 1, body: "x" }),
    "EDIT_WINDOW_CLOSED",
  );
});

test("delete: author or group admin; content leaves the store before the publish; deleted targets refused", async () => {
  const { c, a, s, O, AD, M, g, dm } = await world();
  const file = await c.store.saveFile(
    { channelId: g, uploaderId: M, name: "f", contentType: "text/plain" },
    (await import("node:stream")).Readable.from([Buffer.from("x")]),
  );
  const m1 = c.store.byId.get(messageId(g, 1)) as StoredMessage;
  m1.fileIds = [file.id];
  m1.mentions = [O];
  await c.store.addMentions(g, 1, [O]);
  await c.store.raiseChannelHeads([
    {
      channelId: g,
      lastSeq: 1,
      lastMessage: { seq: 1, senderId: M, body: "b1", hasFiles: true, createdAt: new Date() },
    },
  ]);
  await refused(s.delete(O, { channelId: dm, clientMsgId: "d0", targetSeq: 1 }), "FORBIDDEN");
  await s.delete(AD, { channelId: g, clientMsgId: "d1", targetSeq: 1 });
  const after = await c.store.messageAt(g, 1);
  assert.deepEqual([after?.body, after?.fileIds, after?.mentions], ["", [], undefined]);
  assert.equal(await c.store.getFile(file.id), null);
  assert.deepEqual(await c.store.mentionsOf(O), []);
  assert.deepEqual(
    [(await c.store.getChannel(g))?.lastMessage?.body, (await c.store.getChannel(g))?.lastMessage?.deleted],
    ["", true],
  );
  await s.delete(M, { channelId: g, clientMsgId: "d2", targetSeq: 2 });
  const events = await published(a, g, 2);
  assert.deepEqual(
    events.map((e) => [e.kind, e.targetSeq, e.senderId, e.body]),
    [
      ["delete", 1, AD, ""],
      ["delete", 2, M, ""],
    ],
  );
  // The tombstone is stored (as the partition owner would): the target reads as deleted.
  await c.store.insertOrdered([
    stored(g, 5, AD, { kind: "delete", targetSeq: 1, clientMsgId: "d1", body: "" }),
  ]);
  await refused(s.edit(M, { channelId: g, clientMsgId: "e1", targetSeq: 1, body: "x" }), "MESSAGE_DELETED");
  await refused(s.delete(M, { channelId: g, clientMsgId: "d3", targetSeq: 1 }), "MESSAGE_DELETED");
  await refused(
    s.react(M, { channelId: g, clientMsgId: "r1", targetSeq: 1, emoji: "👍", on: true }),
    "MESSAGE_DELETED",
  );
  await refused(s.send(M, { channelId: g, clientMsgId: "s1", body: "re", replyTo: 1 }), "MESSAGE_DELETED", {
    field: "replyTo",
  });
  // A retry of the delete that was stored is acked again, nothing published.
  await s.delete(AD, { channelId: g, clientMsgId: "d1", targetSeq: 1 });
  await published(a, g, 0);
});

test("reply: to an existing plain message; a missing seq NOT_FOUND, an event INVALID_ARGUMENT", async () => {
  const { a, s, M, g } = await world();
  await s.send(M, { channelId: g, clientMsgId: "s1", body: "re", replyTo: 2 });
  await refused(s.send(M, { channelId: g, clientMsgId: "s2", body: "re", replyTo: 99 }), "NOT_FOUND", {
    field: "replyTo",
  });
  await refused(s.send(M, { channelId: g, clientMsgId: "s3", body: "re", replyTo: 4 }), "INVALID_ARGUMENT", {
    field: "replyTo",
  });
  assert.deepEqual(
    (await published(a, g, 1)).map((e) => [e.replyTo, e.kind]),
    [[2, undefined]],
  );
});

test("react: members only (one who left is FORBIDDEN); explicit on/off published", async () => {
  const { a, s, O, M, g } = await world();
  await s.react(O, { channelId: g, clientMsgId: "r1", targetSeq: 2, emoji: "🎉", on: true });
  await s.react(O, { channelId: g, clientMsgId: "r2", targetSeq: 2, emoji: "🎉", on: false });
  await s.removeMember(M, g, M);
  await refused(
    s.react(M, { channelId: g, clientMsgId: "r3", targetSeq: 2, emoji: "🎉", on: true }),
    "FORBIDDEN",
  );
  assert.deepEqual(
    (await published(a, g, 2)).map((e) => [e.kind, e.emoji, e.on]),
    [
      ["reaction", "🎉", true],
      ["reaction", "🎉", false],
    ],
  );
});

test("history is folded from the page and one read of the events targeting it", async () => {
  const { c, s, O, M, g } = await world();
  await c.store.insertOrdered([
    stored(g, 5, M, { kind: "edit", targetSeq: 2, body: "two!" }),
    stored(g, 6, O, { replyTo: 2 }),
    stored(g, 7, O, { kind: "reaction", targetSeq: 1, emoji: "👍", on: true, body: "" }),
  ]);
  const before = c.store.calls.get("eventsTargeting") ?? 0;
  const page = await s.messages(O, g, { afterSeq: 1, limit: 5 });
  assert.equal((c.store.calls.get("eventsTargeting") ?? 0) - before, 1);
  assert.deepEqual([page.fromSeq, page.toSeq], [2, 6]);
  assert.deepEqual(
    page.messages.map((m) => [m.seq, m.edited?.body ?? null, m.quote?.body ?? null]),
    [
      [2, "two!", null],
      [3, null, null],
      [6, null, "two!"],
    ],
  );
  const first = await s.messages(O, g, { beforeSeq: 2 });
  assert.deepEqual(first.messages[0]?.reactions, [{ emoji: "👍", userIds: [O, M].sort() }]);
  assert.deepEqual(await s.messages(O, g, { afterSeq: 50 }), { messages: [], fromSeq: 0, toSeq: 0 });
});

test("mentions are counted per channel above lastReadSeq in the recent-chats list; mute shows", async () => {
  const { c, s, O, M, g } = await world();
  await c.store.addMentions(g, 2, [O]);
  await c.store.addMentions(g, 3, [O]);
  await c.store.raiseChannelHeads([{ channelId: g, lastSeq: 4, lastMessage: null }]);
  await c.store.raiseReceipts([{ channelId: g, userId: O, lastDeliveredSeq: 2, lastReadSeq: 2 }]);
  await s.setMuted(O, g, true);
  const list = await s.listChannels(O, undefined, undefined);
  const summary = list.channels.find((x) => x.id === g);
  assert.deepEqual([summary?.mentions, summary?.muted, summary?.unread], [1, true, 2]);
  await s.setMuted(O, g, false);
  const again = (await s.listChannels(O, undefined, undefined)).channels.find((x) => x.id === g);
  assert.equal(again?.muted, false);
  assert.equal((await s.listChannels(M, undefined, undefined)).channels.find((x) => x.id === g)?.mentions, 0);
  await refused(s.setMuted(O, "0123456789abcdef01234567", true), "NOT_FOUND");
});

test("blocks: no direct messages either way (BLOCKED), no presence; groups unaffected; lifted again", async () => {
  const { s, O, M, X, g, dm } = await world();
  await s.setBlocked(M, O, true);
  assert.deepEqual(
    (await s.blocks(M)).blocks.map((b) => b.userId),
    [O],
  );
  await refused(s.send(O, { channelId: dm, clientMsgId: "s1", body: "hi" }), "BLOCKED");
  await refused(s.send(M, { channelId: dm, clientMsgId: "s2", body: "hi" }), "BLOCKED");
  await refused(
    s.react(O, { channelId: dm, clientMsgId: "r1", targetSeq: 1, emoji: "x", on: true }),
    "BLOCKED",
  );
  await refused(s.edit(M, { channelId: dm, clientMsgId: "e1", targetSeq: 1, body: "x" }), "BLOCKED");
  await refused(s.requireContacts(O, [M]), "BLOCKED", { userIds: [M] });
  await refused(s.requireContacts(M, [O]), "BLOCKED", { userIds: [O] });
  await s.send(O, { channelId: g, clientMsgId: "s3", body: "in the group" });
  await refused(s.setBlocked(M, M, true), "INVALID_ARGUMENT");
  await refused(s.setBlocked(M, "0123456789abcdef01234567", true), "NOT_FOUND");
  await s.setBlocked(M, O, false);
  await s.send(O, { channelId: dm, clientMsgId: "s4", body: "hi again" });
  await s.requireContacts(O, [M]);
  assert.equal(directChannelId(O, M), dm);
  await refused(s.requireContacts(X, [M]), "FORBIDDEN");
});
