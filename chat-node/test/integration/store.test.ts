// The store against a real MongoDB-protocol server: FerretDB from testkit, or whatever
// STORE_TEST_MONGODB_URL names (e.g. a real MongoDB) — one suite for both.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { randomBytes } from "node:crypto";
import { startMongo, type MongoService } from "@vibetalk/testkit";
import { MongoStore } from "../../src/adapters/mongo-store.js";
import { messageId } from "../../src/domain/ids.js";
import { assignSeqs, sequenceBatch } from "../../src/domain/sequencing.js";
import type { AcceptedMessage } from "../../src/domain/messages.js";
import { channel, member } from "../support/contracts/store.js";

let mongo: MongoService | undefined;
let store: MongoStore;

before(async () => {
  const external = process.env["STORE_TEST_MONGODB_URL"];
  if (external) {
    const u = new URL(external);
    u.pathname = `/vt_store_${randomBytes(4).toString("hex")}`;
    store = await MongoStore.connect(u.toString());
  } else {
    mongo = await startMongo();
    store = await MongoStore.connect(mongo.url);
  }
});
after(async () => {
  await store?.close();
  await mongo?.stop();
});

const hex = () => randomBytes(12).toString("hex");
const accepted = (channelId: string, senderId: string, clientMsgId: string): AcceptedMessage => ({
  channelId,
  senderId,
  clientMsgId,
  body: `body ${clientMsgId}`,
  fileIds: [],
  sentAt: Date.now(),
});

test("users: unique usernames, prefix search with cursor", async () => {
  const a = await store.createUser({ username: "store_alice", displayName: "Alice", passwordHash: "x" });
  await store.createUser({ username: "store_albert", displayName: "Al", passwordHash: "x" });
  await store.createUser({ username: "store_bob", displayName: "Bob", passwordHash: "x" });
  await assert.rejects(
    store.createUser({ username: "store_alice", displayName: "A2", passwordHash: "x" }),
    /taken/,
  );
  assert.equal((await store.findUserByUsername("store_alice"))?.id, a.id);
  const page1 = await store.searchUsers("store_al", null, 1);
  assert.deepEqual(
    page1.map((u) => u.username),
    ["store_albert"],
  );
  const page2 = await store.searchUsers("store_al", "store_albert", 10);
  assert.deepEqual(
    page2.map((u) => u.username),
    ["store_alice"],
  );
  assert.equal((await store.searchUsers("store_.*", null, 10)).length, 0, "the prefix is literal");
  await store.setLastSeen(a.id, new Date(5000));
  await store.setLastSeen(a.id, new Date(1000));
  assert.equal((await store.getUser(a.id))?.lastSeenAt?.getTime(), 5000);
});

test("messages: ordered inserts, both unique keys, paging by seq", async () => {
  const ch = hex();
  const docs = assignSeqs([accepted(ch, "u", "a"), accepted(ch, "u", "b"), accepted(ch, "v", "a")], 0);
  assert.deepEqual(await store.insertOrdered(docs), { inserted: 3 });
  assert.equal(await store.lastSeq(ch), 3);
  assert.equal(await store.lastSeq(hex()), 0);
  // seq conflict
  const conflict = assignSeqs([accepted(ch, "w", "x")], 2);
  const r1 = await store.insertOrdered(conflict);
  assert.equal(r1.inserted, 0);
  assert.equal(r1.failure?.duplicateKey, true);
  // idempotency conflict in the middle of an ordered insert
  const more = assignSeqs([accepted(ch, "w", "y"), accepted(ch, "u", "a"), accepted(ch, "w", "z")], 3);
  const r2 = await store.insertOrdered(more);
  assert.equal(r2.inserted, 1);
  assert.equal(r2.failure?.index, 1);
  assert.equal(r2.failure?.duplicateKey, true);
  assert.equal((await store.findByClientMsgId(ch, "u", "a"))?.seq, 1);
  assert.equal(await store.findByClientMsgId(ch, "u", "zz"), null);
  assert.deepEqual(
    (await store.messagesAfter(ch, 1, 2)).map((m) => m.seq),
    [2, 3],
  );
  assert.deepEqual(
    (await store.messagesAfter(ch, 0, 10, 3)).map((m) => m.seq),
    [1, 2],
  );
  assert.deepEqual(
    (await store.messagesBefore(ch, null, 2)).map((m) => m.seq),
    [3, 4],
  );
  assert.deepEqual(
    (await store.messagesBefore(ch, 3, 10)).map((m) => m.seq),
    [1, 2],
  );
  const m = (await store.messagesAfter(ch, 0, 1))[0];
  assert.equal(m?.id, messageId(ch, 1));
  assert.equal(m?.body, "body a");
});

test("an ordered insert stops at its first failure, however large the batch", async () => {
  const ch = hex();
  await store.insertOrdered(assignSeqs([accepted(ch, "u", "first")], 0));
  const docs = assignSeqs(
    Array.from({ length: 250 }, (_, i) => accepted(ch, "u", i === 120 ? "first" : `m${i}`)),
    1,
  );
  const r = await store.insertOrdered(docs);
  assert.equal(r.inserted, 120);
  assert.equal(r.failure?.index, 120);
  assert.equal(r.failure?.duplicateKey, true);
  assert.equal(await store.lastSeq(ch), 121, "nothing beyond the failure was written");
  const clash = assignSeqs(
    Array.from({ length: 150 }, (_, i) => accepted(ch, "v", `n${i}`)),
    100, // seq 101..121 are taken
  );
  const r2 = await store.insertOrdered(clash);
  assert.equal(r2.inserted, 0);
  assert.equal(await store.lastSeq(ch), 121);
});

test("sequencing over the real store: two owners never fork or gap", async () => {
  const ch = hex();
  const cacheA = new Map<string, number>();
  const cacheB = new Map<string, number>();
  const wrap = (m: AcceptedMessage) => ({ message: m });
  await Promise.all([
    (async () => {
      for (let i = 0; i < 10; i++) await sequenceBatch(store, [wrap(accepted(ch, "a", `a${i}`))], cacheA);
    })(),
    (async () => {
      for (let i = 0; i < 10; i++)
        await sequenceBatch(
          store,
          [wrap(accepted(ch, "b", `b${i}`)), wrap(accepted(ch, "b", `b${i}`))],
          cacheB,
        );
    })(),
  ]);
  const all = await store.messagesAfter(ch, 0, 100);
  assert.deepEqual(
    all.map((x) => x.seq),
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
});

test("channels, members, heads and receipts", async () => {
  const ids = new Set(Array.from({ length: 100 }, () => store.newId()));
  assert.equal(ids.size, 100, "newId never repeats");
  for (const id of ids) assert.match(id, /^[a-f0-9]{24}$/);
  const owner = hex();
  const ch = channel(hex(), owner);
  const members = [{ ...member(ch.id, owner), role: "owner" as const }, member(ch.id, "u1".padEnd(24, "0"))];
  const r = await store.createChannel(ch, members);
  assert.equal(r.created, true);
  await store.addMembers(ch.id, members);
  const again = await store.createChannel({ ...ch, name: "other" }, members);
  assert.equal(again.created, false);
  assert.equal(again.channel.name, "g");
  assert.equal((await store.getChannel(ch.id))?.memberCount, 2);
  assert.equal((await store.listMembers(ch.id)).length, 2);
  assert.deepEqual(
    (await store.listMemberships(owner)).map((m) => m.channelId),
    [ch.id],
  );
  const at = new Date();
  await store.raiseChannelHeads([
    {
      channelId: ch.id,
      lastSeq: 5,
      lastMessage: { seq: 5, senderId: owner, body: "five", hasFiles: false, createdAt: at },
    },
  ]);
  await store.raiseChannelHeads([
    {
      channelId: ch.id,
      lastSeq: 3,
      lastMessage: { seq: 3, senderId: owner, body: "three", hasFiles: false, createdAt: at },
    },
  ]);
  const c = await store.getChannel(ch.id);
  assert.equal(c?.lastSeq, 5);
  assert.equal(c?.lastMessage?.body, "five");
  // 45 receipts: more than one bulk batch
  const marks = Array.from({ length: 45 }, (_, i) => ({
    channelId: ch.id,
    userId: owner,
    lastDeliveredSeq: i,
    lastReadSeq: i - 1,
  }));
  await store.raiseReceipts(marks);
  await store.raiseReceipts([{ channelId: ch.id, userId: owner, lastDeliveredSeq: 2, lastReadSeq: 1 }]);
  const mem = await store.getMember(ch.id, owner);
  assert.equal(mem?.lastDeliveredSeq, 44);
  assert.equal(mem?.lastReadSeq, 43);
  await store.setRole(ch.id, owner, "admin");
  assert.equal((await store.getMember(ch.id, owner))?.role, "admin");
  assert.equal(await store.removeMember(ch.id, owner), true);
  assert.equal(await store.removeMember(ch.id, owner), false);
  assert.equal((await store.getChannel(ch.id))?.memberCount, 1);
  await store.renameChannel(ch.id, "renamed");
  assert.equal((await store.getChannels([ch.id, "nope"]))[0]?.name, "renamed");
});

test("files in GridFS", async () => {
  const content = randomBytes(700_000);
  const f = await store.saveFile(
    { channelId: "c1", uploaderId: "u1", name: "a.bin", contentType: "application/zip" },
    Readable.from([content]),
  );
  assert.equal(f.size, content.length);
  assert.equal((await store.getFile(f.id))?.channelId, "c1");
  const parts: Buffer[] = [];
  for await (const p of store.openFile(f.id)) parts.push(p as Buffer);
  assert.ok(Buffer.concat(parts).equals(content));
  assert.equal(await store.getFile("nothex"), null);
  await store.deleteFile(f.id);
  assert.equal(await store.getFile(f.id), null);
  assert.equal(await store.ping(), true);
});
