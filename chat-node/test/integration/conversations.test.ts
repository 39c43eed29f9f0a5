// Edits, deletes, reactions, replies, mentions, blocks and mutes on two chat-nodes sharing real Redis,
// RabbitMQ and FerretDB (docs/protocol.md, "Conversations"): an event sent on node A reaches a device on
// node B live and through sync, history comes back folded, and a delete's content leaves FerretDB.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  foldEvents,
  type ChannelsReply,
  type Message,
  type MessageChangeReply,
  type MessagesReply,
  type SyncReply,
} from "@vibetalk/protocol";
import { MongoStore } from "../../src/adapters/mongo-store.js";
import type { ChatNode } from "../../src/node.js";
import {
  sleep,
  startNode,
  startServices,
  TestUser,
  waitFor,
  type Services,
  type TestSocket,
} from "../support/harness.js";

let services: Services;
let A: ChatNode;
let B: ChatNode;
let ann: TestUser;
let ben: TestUser;
let cat: TestUser;

before(async () => {
  services = await startServices();
  // Partitions split between A and B, so each channel's owner is one of them and events cross nodes.
  A = await startNode(services, { OWNED_PARTITIONS: "0-3" });
  B = await startNode(services, { OWNED_PARTITIONS: "4-7" });
  [ann, ben, cat] = await Promise.all([TestUser.register(A), TestUser.register(B), TestUser.register(A)]);
});
after(async () => {
  for (const u of [ann, ben, cat]) u?.closeAll();
  await Promise.all([A, B].map((n) => n?.stop()));
  await services?.stop();
});

let n = 0;
const cid = () => `conv-${Date.now()}-${++n}`;

/** The first `count` distinct seqs a socket got on a channel (a repeated send is delivered again). */
function distinct(s: TestSocket, channelId: string, count: number): Promise<Message[]> {
  return waitFor(`${count} distinct seqs on ${channelId}`, () => {
    const bySeq = new Map(s.messages(channelId).map((m) => [m.seq, m]));
    return bySeq.size >= count ? [...bySeq.values()].sort((a, b) => a.seq - b.seq) : undefined;
  });
}

test("edit, reaction, reply and delete from node A reach node B live and through sync; history folds them", async () => {
  const g = await ann.group(A, "talk", [ben, cat]);
  const sa = await ann.connect(A);
  const sb = await ben.connect(B);
  assert.equal((await sa.send(g.id, `hello @${ben.username} and @nobody`)).ok, true);
  const [first] = await sb.waitMessages(g.id, 1);
  assert.deepEqual(first?.mentions, [ben.id]);
  const ok = (r: MessageChangeReply) => assert.equal(r.ok, true, JSON.stringify(r));
  ok(
    await sa.emit("message:edit", {
      channelId: g.id,
      clientMsgId: cid(),
      targetSeq: 1,
      body: "hello, edited",
    }),
  );
  ok(
    await sb.emit("message:react", {
      channelId: g.id,
      clientMsgId: cid(),
      targetSeq: 1,
      emoji: "👍",
      on: true,
    }),
  );
  // The same reaction twice (a retry): stored once.
  const react = { channelId: g.id, clientMsgId: cid(), targetSeq: 1, emoji: "👍", on: true };
  for (let i = 0; i < 2; i++) ok(await sa.emit("message:react", react));
  ok(await sb.emit("message:send", { channelId: g.id, clientMsgId: cid(), body: "a reply", replyTo: 1 }));
  assert.equal((await sa.send(g.id, "to be deleted")).ok, true);
  const live = await distinct(sb, g.id, 6);
  const toDelete = live.find((m) => m.body === "to be deleted")?.seq ?? 0;
  ok(await sa.emit("message:delete", { channelId: g.id, clientMsgId: cid(), targetSeq: toDelete }));
  const all = await distinct(sb, g.id, 7);
  assert.deepEqual(
    all.map((m) => m.kind ?? "message"),
    ["message", "edit", "reaction", "reaction", "message", "message", "delete"],
  );
  assert.deepEqual(
    all.map((m) => m.seq),
    [1, 2, 3, 4, 5, 6, 7],
    "one seq per event, the repeated reaction stored once",
  );
  const expected = [
    {
      seq: 1,
      body: "hello, edited",
      reactions: [{ emoji: "👍", userIds: [ann.id, ben.id].sort() }],
      quote: null,
    },
    { seq: 5, body: "a reply", reactions: [], quote: "hello, edited" },
    { seq: 6, body: "", reactions: [], quote: null, deleted: true },
  ];
  const view = (ms: ReturnType<typeof foldEvents>) =>
    ms.map((m) => ({
      seq: m.seq,
      body: m.edited?.body ?? m.body,
      reactions: m.reactions,
      quote: m.quote?.body ?? null,
      ...(m.deleted ? { deleted: true } : {}),
    }));
  assert.deepEqual(view(foldEvents(all)), expected, "live events fold on the client");

  // A device on node B that was away syncs the same events.
  const late = await ben.connect(B);
  const sync = await late.emit<SyncReply>("sync", { channels: [{ channelId: g.id, afterSeq: 0 }] });
  assert.ok(sync.ok);
  assert.deepEqual(view(foldEvents(sync.messages)), expected, "sync events fold the same");

  // History (node A and node B) is folded by the server.
  for (const node of [A, B]) {
    const h = await ben.api<MessagesReply>(node, "GET", `/channels/${g.id}/messages`);
    assert.equal(h.status, 200);
    assert.deepEqual([h.body.fromSeq, h.body.toSeq], [1, 7]);
    assert.deepEqual(view(h.body.messages), expected);
  }
  // A page that holds only the original still gets its later events (found by target).
  const p1 = await ben.api<MessagesReply>(B, "GET", `/channels/${g.id}/messages?limit=1&afterSeq=0`);
  assert.deepEqual(view(p1.body.messages), [expected[0]]);

  // The deleted message's body is gone from FerretDB, and from the channel's preview.
  const store = await MongoStore.connect(services.mongo.url);
  try {
    const doc = await store.messageAt(g.id, toDelete);
    assert.deepEqual([doc?.body, doc?.fileIds], ["", []]);
    const ch = await waitFor("the preview scrubbed", async () => {
      const c = await store.getChannel(g.id);
      return c?.lastSeq === 7 ? c : undefined;
    });
    assert.deepEqual([ch.lastMessage?.body, ch.lastMessage?.deleted], ["", true]);
  } finally {
    await store.close();
  }
  // Ben was mentioned once and has read nothing.
  const list = await ben.api<ChannelsReply>(A, "GET", "/channels");
  const summary = list.body.channels.find((c) => c.id === g.id);
  assert.equal(summary?.mentions, 1);
  ok(await sb.emit("receipt", { channelId: g.id, seq: 7, kind: "read" }));
  await waitFor("mentions read", async () => {
    const l = await ben.api<ChannelsReply>(B, "GET", "/channels");
    return l.body.channels.find((c) => c.id === g.id)?.mentions === 0 ? true : undefined;
  });
  sa.close();
  sb.close();
  late.close();
});

test("refusals over Socket.IO: each with its code, nothing stored", async () => {
  const g = await ann.group(A, "rules", [ben]);
  const sa = await ann.connect(A);
  const sb = await ben.connect(B);
  assert.equal((await sa.send(g.id, "ann's")).ok, true);
  await sb.waitMessages(g.id, 1);
  const code = async (s: typeof sa, event: string, payload: Record<string, unknown>) => {
    const r = await s.emit<MessageChangeReply>(event, { channelId: g.id, clientMsgId: cid(), ...payload });
    return r.ok ? "ok" : r.error.code;
  };
  assert.equal(await code(sb, "message:edit", { targetSeq: 1, body: "not mine" }), "FORBIDDEN");
  assert.equal(await code(sb, "message:delete", { targetSeq: 1 }), "FORBIDDEN");
  assert.equal(await code(sa, "message:edit", { targetSeq: 9, body: "x" }), "NOT_FOUND");
  assert.equal(await code(sa, "message:send", { body: "x", replyTo: 9 }), "NOT_FOUND");
  assert.equal(
    await code(sa, "message:react", { targetSeq: 1, emoji: "x".repeat(33), on: true }),
    "INVALID_ARGUMENT",
  );
  assert.equal(await code(sa, "message:react", { targetSeq: 1, emoji: "a b", on: true }), "INVALID_ARGUMENT");
  assert.equal(await code(sa, "message:react", { targetSeq: 1, emoji: "👍" }), "INVALID_ARGUMENT");
  assert.equal(await code(sa, "message:react", { targetSeq: 1, emoji: "👍", on: true }), "ok");
  await sb.waitMessages(g.id, 2);
  assert.equal(await code(sa, "message:edit", { targetSeq: 2, body: "edit a reaction" }), "INVALID_ARGUMENT");
  assert.equal(await code(sa, "message:delete", { targetSeq: 1 }), "ok");
  await sb.waitMessages(g.id, 3);
  assert.equal(await code(sa, "message:edit", { targetSeq: 1, body: "too late" }), "MESSAGE_DELETED");
  assert.equal(await code(sa, "message:delete", { targetSeq: 1 }), "MESSAGE_DELETED");
  // Ben leaves: reacting fails.
  assert.equal((await ben.api(B, "DELETE", `/channels/${g.id}/members/${ben.id}`)).status, 200);
  assert.equal(await code(sb, "message:react", { targetSeq: 1, emoji: "👍", on: true }), "FORBIDDEN");
  const h = await ann.api<MessagesReply>(A, "GET", `/channels/${g.id}/messages`);
  assert.equal(h.body.toSeq, 3, "only the reaction and the delete were stored");
  sa.close();
  sb.close();
});

test("the edit window: an edit after LIMIT_EDIT_WINDOW_SECONDS is EDIT_WINDOW_CLOSED", async () => {
  const strict = await startNode(services, { LIMIT_EDIT_WINDOW_SECONDS: "1" });
  try {
    const d = await ann.direct(A, cat);
    const s = await ann.connect(strict);
    assert.equal((await s.send(d.id, "quick")).ok, true);
    const [m] = await s.waitMessages(d.id, 1);
    await new Promise((r) => setTimeout(r, 1500));
    const r = await s.emit<MessageChangeReply>("message:edit", {
      channelId: d.id,
      clientMsgId: cid(),
      targetSeq: m?.seq,
      body: "slow",
    });
    assert.equal(r.ok ? "ok" : r.error.code, "EDIT_WINDOW_CLOSED");
    s.close();
  } finally {
    await strict.stop();
  }
});

test("blocks: no direct messages either way (BLOCKED), no presence subscription; mute shows in the list", async () => {
  const d = await ben.direct(B, cat);
  const sb = await ben.connect(B);
  const sc = await cat.connect(A);
  assert.equal((await ben.api(B, "PUT", `/blocks/${cat.id}`)).status, 200);
  assert.deepEqual(
    (await ben.api<{ blocks: Array<{ userId: string }> }>(A, "GET", "/blocks")).body.blocks.map(
      (b) => b.userId,
    ),
    [cat.id],
  );
  const codeOf = (r: { ok: boolean; error?: { code: string } }) => (r.ok ? "ok" : r.error?.code);
  assert.equal(codeOf(await sc.send(d.id, "hi")), "BLOCKED");
  assert.equal(codeOf(await sb.send(d.id, "hi")), "BLOCKED");
  assert.equal(codeOf(await sc.emit("presence:subscribe", { userIds: [ben.id] })), "BLOCKED");
  const self = await ben.api<{ error: { code: string } }>(A, "PUT", `/blocks/${ben.id}`);
  assert.deepEqual([self.status, self.body.error.code], [400, "INVALID_ARGUMENT"]);
  assert.equal((await ben.api(B, "DELETE", `/blocks/${cat.id}`)).status, 200);
  assert.equal(codeOf(await sc.send(d.id, "hi again")), "ok");
  assert.equal(codeOf(await sc.emit("presence:subscribe", { userIds: [ben.id] })), "ok");
  const got: Message[] = await sb.waitMessages(d.id, 1);
  assert.equal(got[0]?.body, "hi again");

  assert.equal((await ben.api(A, "PUT", `/channels/${d.id}/mute`)).status, 200);
  const s = await waitFor("the muted channel's unread message", async () => {
    const l = await ben.api<ChannelsReply>(B, "GET", "/channels");
    const c = l.body.channels.find((x) => x.id === d.id);
    return c?.unread === 1 ? c : undefined;
  });
  assert.equal(s.muted, true);
  assert.equal((await ben.api(A, "DELETE", `/channels/${d.id}/mute`)).status, 200);
  const unmuted = await ben.api<ChannelsReply>(B, "GET", "/channels");
  assert.equal(unmuted.body.channels.find((c) => c.id === d.id)?.muted, false);
  sb.close();
  sc.close();
});

test("a block ends the presence subscriptions taken before it, both ways, on every node", async () => {
  type Presence = { userId: string; online: boolean };
  const [dan, eve] = await Promise.all([TestUser.register(B, "dan"), TestUser.register(A, "eve")]);
  await dan.direct(B, eve);
  const sd = await dan.connect(B);
  const ok = (r: { ok: boolean }) => assert.equal(r.ok, true, JSON.stringify(r));
  ok(await sd.emit("presence:subscribe", { userIds: [eve.id] }));
  const se1 = await eve.connect(A);
  ok(await se1.emit("presence:subscribe", { userIds: [dan.id] }));
  await sd.waitEvent<Presence>("presence", (p) => p.userId === eve.id && p.online);
  se1.close();
  await sd.waitEvent<Presence>("presence", (p) => p.userId === eve.id && !p.online);
  // Eve (node A) blocks Dan (node B): Dan's subscription on B ends, and Eve's own to Dan's too.
  assert.equal((await eve.api(A, "PUT", `/blocks/${dan.id}`)).status, 200);
  await sleep(500);
  const seen = sd.of<Presence>("presence").length;
  const se2 = await eve.connect(A);
  await sleep(1500);
  assert.equal(sd.of<Presence>("presence").length, seen, "no presence of Eve after the block");
  // The other way: unblocked, Eve (node A) follows Dan again; blocked again, she stops.
  assert.equal((await eve.api(A, "DELETE", `/blocks/${dan.id}`)).status, 200);
  ok(await se2.emit("presence:subscribe", { userIds: [dan.id] }));
  sd.close();
  await se2.waitEvent<Presence>("presence", (p) => p.userId === dan.id && !p.online);
  const sd2 = await dan.connect(B);
  await se2.waitEvent<Presence>("presence", (p) => p.userId === dan.id && p.online);
  assert.equal((await eve.api(A, "PUT", `/blocks/${dan.id}`)).status, 200);
  await sleep(500);
  const before = se2.of<Presence>("presence").length;
  sd2.close();
  await sleep(1500);
  assert.equal(se2.of<Presence>("presence").length, before, "no presence of Dan after the block");
  se2.close();
});

test("an edit of the last message revises the recent-chats preview on every node; a delete then blanks it", async () => {
  const g = await ann.group(A, "preview", [ben]);
  const sa = await ann.connect(A);
  assert.equal((await sa.send(g.id, "typo hree")).ok, true);
  await sa.waitMessages(g.id, 1);
  const preview = async () => {
    const r = await ben.api<ChannelsReply>(B, "GET", "/channels");
    return r.body.channels.find((c) => c.id === g.id)?.lastMessage;
  };
  await waitFor("the first preview", async () => (await preview())?.body === "typo hree");
  const edit = await sa.emit<MessageChangeReply>("message:edit", {
    channelId: g.id,
    clientMsgId: cid(),
    targetSeq: 1,
    body: "typo here",
  });
  assert.equal(edit.ok, true, JSON.stringify(edit));
  const revised = await waitFor("the revised preview", async () => {
    const p = await preview();
    return p?.body === "typo here" && p;
  });
  assert.deepEqual([revised.seq, revised.edited, revised.deleted], [1, true, undefined]);
  const del = await sa.emit<MessageChangeReply>("message:delete", {
    channelId: g.id,
    clientMsgId: cid(),
    targetSeq: 1,
  });
  assert.equal(del.ok, true, JSON.stringify(del));
  const blank = await waitFor("the blanked preview", async () => {
    const p = await preview();
    return p?.deleted === true && p;
  });
  assert.deepEqual([blank.body, blank.edited], ["", undefined]);
});
