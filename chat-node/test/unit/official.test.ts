// The official group on the in-memory fakes (docs/chat-node.md, "The official group"): creation once,
// joins, the resumable backfill, who may post, leave, pin and change it, and what it does not share
// (presence contacts, typing, receipts). official.test.ts in the integration tier runs it on the servers.
import assert from "node:assert/strict";
import { test } from "node:test";
import { OFFICIAL_CHANNEL_ID, SERVICE_SENDER_ID, type ErrorCode } from "@vibetalk/protocol";
import { loadConfig } from "../../src/config.js";
import { partitionOf } from "../../src/domain/hashing.js";
import { messageId } from "../../src/domain/ids.js";
import type { PartitionDelivery } from "../../src/ports.js";
import { requireOfficialPoster } from "../../src/services/official.js";
import { toErrorInfo } from "../../src/transport/errors.js";
import { FakeCluster, TEST_ENV, type FakeNode } from "../support/fakes/cluster.js";

const ON = { OFFICIAL_GROUP: "true", OFFICIAL_BACKFILL_BATCH: "5" };

async function refused(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    const { info } = toErrorInfo(e);
    assert.equal(info.code, code, `expected ${code}, got ${info.code}: ${info.message}`);
    return true;
  });
}

function official(n: FakeNode) {
  assert.ok(n.official, "the official group is on");
  return n.official;
}

async function users(c: FakeCluster, n: number, prefix = "u"): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      (await c.store.createUser({ username: `${prefix}${i}`, displayName: "x", passwordHash: "-" })).id,
    );
  }
  return out;
}

async function waitUntil(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(ok(), "not reached");
}

/** The first `n` messages published to the official group's partition. */
async function published(n: FakeNode, count: number): Promise<PartitionDelivery[]> {
  const got: PartitionDelivery[] = [];
  const sub = await n.broker.subscribePartition(
    partitionOf(OFFICIAL_CHANNEL_ID, n.config.partitions),
    10,
    (d) => got.push(d),
  );
  for (let i = 0; i < 100 && got.length < count; i++) await new Promise((r) => setImmediate(r));
  await sub.close();
  return got;
}

/** A cluster with the group created and `n` users in it (joined), the first one an admin. */
async function withMembers(n: number, env: Record<string, string> = {}) {
  const c = new FakeCluster({ ...ON, ...env });
  const a = await c.node();
  await official(a).ensure();
  const ids = await users(c, n);
  await official(a).join(ids);
  await c.store.setRole(OFFICIAL_CHANNEL_ID, ids[0] ?? "", "admin");
  await a.members.changed(OFFICIAL_CHANNEL_ID);
  return { c, a, s: a.service, ids: ids as [string, ...string[]] };
}

test("config: the official group is on by default, named, admins post; a short service token is refused", () => {
  const c = loadConfig({ ...TEST_ENV, OFFICIAL_GROUP: undefined });
  assert.deepEqual(c.official, {
    name: "VibeTalk",
    posting: "admins",
    serviceToken: undefined,
    backfillBatch: 500,
  });
  assert.equal(loadConfig({ ...TEST_ENV, OFFICIAL_GROUP: "false" }).official, undefined);
  assert.throws(
    () => loadConfig({ ...TEST_ENV, OFFICIAL_SERVICE_TOKEN: "short" }),
    /OFFICIAL_SERVICE_TOKEN: must be at least 32 bytes/,
  );
  assert.throws(() => loadConfig({ ...TEST_ENV, OFFICIAL_POSTING: "owners" }), /OFFICIAL_POSTING/);
  assert.throws(() => loadConfig({ ...TEST_ENV, OFFICIAL_GROUP_NAME: "a\u0001b" }), /OFFICIAL_GROUP_NAME/);
  const token = "t".repeat(32);
  const on = loadConfig({ ...TEST_ENV, ...ON, OFFICIAL_SERVICE_TOKEN: token, OFFICIAL_POSTING: "everyone" });
  assert.deepEqual(
    [on.official?.serviceToken, on.official?.posting, on.official?.backfillBatch],
    [token, "everyone", 5],
  );
});

test("ensure: many nodes at once create one official group, of the service, with no members", async () => {
  const c = new FakeCluster({ ...ON, OFFICIAL_GROUP_NAME: "News" });
  const nodes = await Promise.all([c.node(), c.node(), c.node(), c.node()]);
  const results = await Promise.all(nodes.map((n) => official(n).ensure()));
  assert.equal(results.filter((r) => r.created).length, 1);
  const ch = await c.store.getChannel(OFFICIAL_CHANNEL_ID);
  assert.deepEqual(
    {
      type: ch?.type,
      name: ch?.name,
      by: ch?.createdBy,
      posting: ch?.posting,
      pinned: ch?.pinnedSeq,
      n: ch?.memberCount,
    },
    { type: "official", name: "News", by: SERVICE_SENDER_ID, posting: "admins", pinned: null, n: 0 },
  );
  assert.equal([...c.store.channels.keys()].length, 1);
});

test("registration joins the group; login joins an account that is not a member yet", async () => {
  const c = new FakeCluster(ON);
  const a = await c.node();
  await official(a).ensure();
  const r = await a.service.register({ username: "ann", password: "correct horse battery" });
  assert.ok(await c.store.getMember(OFFICIAL_CHANNEL_ID, r.user.id));
  // An account from before the group (or whose join failed): the login safety net.
  await c.store.removeMember(OFFICIAL_CHANNEL_ID, r.user.id);
  await a.service.login({ username: "ann", password: "correct horse battery" });
  assert.equal((await c.store.getMember(OFFICIAL_CHANNEL_ID, r.user.id))?.role, "member");
  assert.equal((await c.store.getChannel(OFFICIAL_CHANNEL_ID))?.memberCount, 1);
  const list = await a.service.listChannels(r.user.id, undefined, undefined);
  assert.deepEqual(
    list.channels.map((x) => [x.id, x.type, x.posting]),
    [[OFFICIAL_CHANNEL_ID, "official", "admins"]],
    "in the recent-chats list like any channel",
  );
});

test("backfill: bounded batches by user id, resume point stored forward only, resumes, concurrent runs harmless", async () => {
  const c = new FakeCluster(ON);
  const [a, b] = [await c.node(), await c.node()];
  await official(a).ensure();
  const ids = (await users(c, 13)).sort();
  const first = await official(a).backfill({ maxBatches: 2 });
  assert.deepEqual(first, { covered: 10, done: false }, "stopped after two batches of 5");
  assert.equal(await c.store.backfillMark(OFFICIAL_CHANNEL_ID), ids[9]);
  assert.deepEqual(
    (await c.store.listMembers(OFFICIAL_CHANNEL_ID)).map((m) => m.userId).sort(),
    ids.slice(0, 10),
  );
  // Two nodes resume at once: the rest is added once, the mark ends at the last id.
  const [ra, rb] = await Promise.all([official(a).backfill(), official(b).backfill()]);
  assert.ok(ra.done && rb.done);
  assert.equal(await c.store.backfillMark(OFFICIAL_CHANNEL_ID), ids[12]);
  const members = await c.store.listMembers(OFFICIAL_CHANNEL_ID);
  assert.deepEqual(members.map((m) => m.userId).sort(), ids);
  assert.equal((await c.store.getChannel(OFFICIAL_CHANNEL_ID))?.memberCount, 13);
  // Nothing left: a later start reads one empty page.
  assert.deepEqual(await official(a).backfill(), { covered: 0, done: true });
});

test("stop: the background backfill ends after its batch, its resume point covering exactly the members added", async () => {
  const c = new FakeCluster(ON);
  const a = await c.node();
  await official(a).ensure();
  const ids = (await users(c, 40)).sort();
  // A drain arrives while the first batch is being marked.
  const raise = c.store.raiseBackfillMark.bind(c.store);
  let stopping: Promise<void> | undefined;
  c.store.raiseBackfillMark = async (id, userId) => {
    await raise(id, userId);
    stopping ??= official(a).stop();
  };
  official(a).start();
  await waitUntil(() => stopping !== undefined);
  await stopping;
  c.store.raiseBackfillMark = raise;
  const mark = await c.store.backfillMark(OFFICIAL_CHANNEL_ID);
  const members = (await c.store.listMembers(OFFICIAL_CHANNEL_ID)).map((m) => m.userId).sort();
  assert.equal(members.length, 5, "one batch, then stopped");
  assert.deepEqual(members, mark === null ? [] : ids.filter((id) => id <= mark));
  // Another node (or this one restarted) resumes from the mark and finishes.
  const b = await c.node();
  assert.deepEqual(await official(b).backfill(), { covered: ids.length - members.length, done: true });
  assert.equal((await c.store.getChannel(OFFICIAL_CHANNEL_ID))?.memberCount, ids.length);
});

test("nobody leaves or is removed (CANNOT_LEAVE); members are not added by hand (FORBIDDEN)", async () => {
  const { s, ids } = await withMembers(3);
  const [admin, m1, m2] = ids;
  await refused(s.removeMember(m1 ?? "", OFFICIAL_CHANNEL_ID, m1 ?? ""), "CANNOT_LEAVE");
  await refused(s.removeMember(admin, OFFICIAL_CHANNEL_ID, m2 ?? ""), "CANNOT_LEAVE");
  await refused(s.addMembers(admin, OFFICIAL_CHANNEL_ID, [m1 ?? ""]), "FORBIDDEN");
});

test("posting: admins only by default (POSTING_RESTRICTED); the admins open it to everyone", async () => {
  const { a, s, ids } = await withMembers(2);
  const [admin, m] = ids as [string, string];
  const send = (u: string, id: string) =>
    s.send(u, { channelId: OFFICIAL_CHANNEL_ID, clientMsgId: id, body: "hi" });
  await refused(send(m, "m1"), "POSTING_RESTRICTED");
  await send(admin, "a1");
  await refused(s.updateChannel(m, OFFICIAL_CHANNEL_ID, { posting: "everyone" }), "FORBIDDEN");
  const ch = await s.updateChannel(admin, OFFICIAL_CHANNEL_ID, { posting: "everyone" });
  assert.equal(ch.posting, "everyone");
  await send(m, "m2");
  const got = await published(a, 2);
  assert.deepEqual(
    got.map((d) => [d.message?.senderId, d.message?.clientMsgId]),
    [
      [admin, "a1"],
      [m, "m2"],
    ],
  );
  assert.throws(() => requireOfficialPoster({ ...ch, posting: "admins" }, "member"), /admins/);
});

test("posting as the service: the token's holder or an admin; the sender is the service id", async () => {
  const { a, s, ids } = await withMembers(2);
  const [admin, m] = ids as [string, string];
  await refused(s.postAsService({ kind: "user", userId: m }, { clientMsgId: "x", body: "no" }), "FORBIDDEN");
  await s.postAsService({ kind: "service" }, { clientMsgId: "s1", body: "from a script" });
  await s.postAsService({ kind: "user", userId: admin }, { clientMsgId: "s2", body: "from an admin" });
  const got = await published(a, 2);
  assert.deepEqual(
    got.map((d) => [d.message?.channelId, d.message?.senderId, d.message?.clientMsgId]),
    [
      [OFFICIAL_CHANNEL_ID, SERVICE_SENDER_ID, "s1"],
      [OFFICIAL_CHANNEL_ID, SERVICE_SENDER_ID, "s2"],
    ],
  );
});

test("roles: the group's admins and the service set them; a member cannot", async () => {
  const { s, ids } = await withMembers(3);
  const [admin, m1, m2] = ids as [string, string, string];
  await refused(s.setRole(m1, OFFICIAL_CHANNEL_ID, m2, "admin"), "FORBIDDEN");
  await s.setRole(admin, OFFICIAL_CHANNEL_ID, m1, "admin");
  await s.setOfficialRoleAsService(m2, "admin");
  const d = await s.channelDetails(admin, OFFICIAL_CHANNEL_ID);
  assert.deepEqual(d.members.map((x) => x.userId).sort(), [admin, m1, m2].sort(), "details list the admins");
  await s.setOfficialRoleAsService(m2, "member");
  const again = await s.channelDetails(m2, OFFICIAL_CHANNEL_ID);
  assert.deepEqual(again.members.map((x) => x.userId).sort(), [admin, m1].sort());
  await refused(s.setOfficialRoleAsService("0123456789abcdef01234567", "admin"), "NOT_FOUND");
});

test("pin: an admin pins a stored message by seq and unpins; details carry it and the counts", async () => {
  const { c, a, s, ids } = await withMembers(3);
  const [admin, m] = ids as [string, string];
  const createdAt = new Date(1_700_000_000_000);
  await c.store.insertOrdered([
    {
      id: messageId(OFFICIAL_CHANNEL_ID, 1),
      channelId: OFFICIAL_CHANNEL_ID,
      seq: 1,
      senderId: SERVICE_SENDER_ID,
      clientMsgId: "p",
      body: "pin me",
      fileIds: [],
      createdAt,
    },
  ]);
  await refused(s.pin(m, OFFICIAL_CHANNEL_ID, 1), "FORBIDDEN");
  await refused(s.pin(admin, OFFICIAL_CHANNEL_ID, 2), "INVALID_ARGUMENT");
  assert.equal((await s.pin(admin, OFFICIAL_CHANNEL_ID, 1)).pinnedSeq, 1);
  await a.presence.join([admin, m]);
  const d = await s.channelDetails(m, OFFICIAL_CHANNEL_ID);
  assert.equal(d.pinned?.body, "pin me");
  assert.equal(d.pinned?.senderId, SERVICE_SENDER_ID);
  assert.deepEqual([d.channel.memberCount, d.onlineCount, d.channel.pinnedSeq], [3, 2, 1]);
  assert.deepEqual(d.service, { userId: SERVICE_SENDER_ID, displayName: "VibeTalk" });
  assert.equal((await s.pin(admin, OFFICIAL_CHANNEL_ID, null)).pinnedSeq, null);
  assert.equal((await s.channelDetails(m, OFFICIAL_CHANNEL_ID)).pinned, null);
  // A group has no pin; posting is the official group's setting only.
  const g = await s.createChannel(admin, { type: "group", name: "g", memberIds: [m] });
  await refused(s.pin(admin, g.channel.id, 1), "FORBIDDEN");
  await refused(s.updateChannel(admin, g.channel.id, { posting: "everyone" }), "INVALID_ARGUMENT");
});

test("the official group makes nobody a presence contact; its receipts are kept, not broadcast", async () => {
  const { c, a, s, ids } = await withMembers(2);
  const [u, v] = ids as [string, string];
  await refused(s.requireContacts(u, [v]), "FORBIDDEN");
  await s.createChannel(u, { type: "direct", userId: v });
  await s.requireContacts(u, [v]);
  await c.store.insertOrdered([
    {
      id: messageId(OFFICIAL_CHANNEL_ID, 1),
      channelId: OFFICIAL_CHANNEL_ID,
      seq: 1,
      senderId: SERVICE_SENDER_ID,
      clientMsgId: "r",
      body: "read me",
      fileIds: [],
      createdAt: new Date(),
    },
  ]);
  await a.broker.bindUser(u);
  await a.broker.bindUser(v);
  await s.receipt(v, { channelId: OFFICIAL_CHANNEL_ID, seq: 1, kind: "read" });
  assert.equal(a.receipts.peek(OFFICIAL_CHANNEL_ID, v)?.lastReadSeq, 1, "kept for v's unread count");
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(
    a.events.filter((e) => e.event.t === "receipt"),
    [],
    "nobody is told",
  );
});
