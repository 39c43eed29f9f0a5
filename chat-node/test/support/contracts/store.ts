// The Store contract (docs/chat-node.md#ports-and-fakes), run against MongoStore on FerretDB
// (integration, contracts.test.ts) and MemoryStore (unit, fakes.test.ts): both must store, order,
// deduplicate and refuse the same way. Every test uses fresh ids, so one server serves them all.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { test } from "node:test";
import { ProtocolError } from "@vibetalk/protocol";
import { messageId } from "../../../src/domain/ids.js";
import type { StoredMessage } from "../../../src/domain/messages.js";
import type { ChannelRecord, MemberRecord, Store } from "../../../src/ports.js";

const hex = () => randomBytes(12).toString("hex");
const tag = () => randomBytes(5).toString("hex");

/** A new group channel record (also for the MongoStore-only tests of store.test.ts). */
export function channel(id: string, by: string, name = "g"): ChannelRecord {
  const now = new Date();
  return {
    id,
    type: "group",
    name,
    createdBy: by,
    createdAt: now,
    lastSeq: 0,
    lastMessage: null,
    lastMessageAt: now,
    memberCount: 0,
  };
}
export const member = (
  channelId: string,
  userId: string,
  role: MemberRecord["role"] = "member",
): MemberRecord => ({
  channelId,
  userId,
  role,
  joinedAt: new Date(),
  lastDeliveredSeq: 0,
  lastReadSeq: 0,
});
/** A stored plain message (also for the unit tests of conversations). */
export function message(
  channelId: string,
  seq: number,
  senderId = "s",
  clientMsgId = `c${seq}`,
): StoredMessage {
  return {
    id: messageId(channelId, seq),
    channelId,
    seq,
    senderId,
    clientMsgId,
    body: `body ${seq} ✓ 🙂`,
    fileIds: [],
    createdAt: new Date(1_700_000_000_000 + seq),
  };
}
const seqs = (ms: StoredMessage[]) => ms.map((m) => m.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function read(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(Buffer.from(c as Buffer));
  return Buffer.concat(parts);
}

/** After scrubDeleted of seq 1 (edited at 100, preview at 1): its content is gone, the rest kept. */
async function assertScrubbed(s: Store, id: string, fileId: string, docs: StoredMessage[]): Promise<void> {
  const original = await s.messageAt(id, 1);
  assert.deepEqual([original?.body, original?.fileIds, original?.mentions], ["", [], undefined]);
  const edit = await s.messageAt(id, 100);
  assert.deepEqual([edit?.body, edit?.mentions, edit?.targetSeq], ["", undefined, 1]);
  assert.equal((await s.messageAt(id, 103))?.body, "other");
  assert.equal((await s.messageAt(id, 2))?.body, docs[1]?.body);
  const c = await s.getChannel(id);
  assert.deepEqual(
    [c?.lastMessage?.body, c?.lastMessage?.hasFiles, c?.lastMessage?.deleted],
    ["", false, true],
  );
  assert.equal(await s.getFile(fileId), null);
  // An event's head raises lastSeq only: the preview and lastMessageAt stay.
  await s.raiseChannelHeads([{ channelId: id, lastSeq: 103, lastMessage: null }]);
  const after = await s.getChannel(id);
  assert.deepEqual([after?.lastSeq, after?.lastMessage?.seq], [103, 1]);
}

export function storeContract(name: string, make: () => Store | Promise<Store>): void {
  test(`${name}: users are created once per username, found by username and id`, async () => {
    const s = await make();
    const username = `u${tag()}`;
    const u = await s.createUser({ username, displayName: "Ann", passwordHash: "h1" });
    assert.match(u.id, /^[a-f0-9]{24}$/);
    assert.deepEqual(
      { username: u.username, displayName: u.displayName, passwordHash: u.passwordHash, seen: u.lastSeenAt },
      { username, displayName: "Ann", passwordHash: "h1", seen: null },
    );
    assert.ok(u.createdAt instanceof Date);
    assert.deepEqual(await s.findUserByUsername(username), u);
    assert.deepEqual(await s.getUser(u.id), u);
    assert.equal(await s.getUser(hex()), null);
    assert.equal(await s.findUserByUsername(`${username}x`), null);
    await assert.rejects(
      s.createUser({ username, displayName: "Other", passwordHash: "h2" }),
      (e: unknown) => e instanceof ProtocolError && e.code === "CONFLICT",
    );
    const v = await s.createUser({ username: `v${tag()}`, displayName: "V", passwordHash: "h" });
    const got = await s.getUsers([u.id, v.id, u.id, hex()]);
    assert.deepEqual(got.map((x) => x.id).sort(), [u.id, v.id].sort());
    assert.deepEqual(await s.getUsers([]), []);
  });

  test(`${name}: searchUsers matches a prefix (any case), sorted, paged after a username`, async () => {
    const s = await make();
    const p = `q${tag()}`;
    for (const n of ["c", "a", "d", "b"])
      await s.createUser({ username: `${p}${n}`, displayName: n, passwordHash: "h" });
    await s.createUser({ username: `x${p}a`, displayName: "not a prefix match", passwordHash: "h" });
    const names = async (prefix: string, after: string | null, limit: number) =>
      (await s.searchUsers(prefix, after, limit)).map((u) => u.username);
    assert.deepEqual(await names(p, null, 10), [`${p}a`, `${p}b`, `${p}c`, `${p}d`]);
    assert.deepEqual(await names(p.toUpperCase(), null, 2), [`${p}a`, `${p}b`]);
    assert.deepEqual(await names(p, `${p}b`, 10), [`${p}c`, `${p}d`]);
    assert.deepEqual(await names(`${p}.`, null, 10), [], "the prefix is text, not a pattern");
    const all = await names("", null, 5);
    assert.equal(all.length, 5);
    assert.deepEqual([...all].sort(), all);
  });

  test(`${name}: last seen only moves forward; the password hash is replaced`, async () => {
    const s = await make();
    const u = await s.createUser({ username: `l${tag()}`, displayName: "L", passwordHash: "old" });
    const t = new Date(1_750_000_000_000);
    await s.setLastSeen(u.id, t);
    await s.setLastSeen(u.id, new Date(t.getTime() - 60_000));
    assert.equal((await s.getUser(u.id))?.lastSeenAt?.getTime(), t.getTime());
    await s.setLastSeen(u.id, new Date(t.getTime() + 1));
    assert.equal((await s.getUser(u.id))?.lastSeenAt?.getTime(), t.getTime() + 1);
    await s.setPasswordHash(u.id, "new");
    assert.equal((await s.getUser(u.id))?.passwordHash, "new");
  });

  test(`${name}: newId gives distinct ids in the store's format`, async () => {
    const s = await make();
    const ids = new Set(Array.from({ length: 50 }, () => s.newId()));
    assert.equal(ids.size, 50);
    for (const id of ids) assert.match(id, /^[a-f0-9]{24}$/);
  });

  test(`${name}: a channel is created once; creating it again returns it as stored, members kept`, async () => {
    const s = await make();
    const [a, b, c] = [hex(), hex(), hex()];
    const id = `dm_${a}_${b}`;
    const first = await s.createChannel({ ...channel(id, a, "first"), type: "direct", memberCount: 2 }, [
      member(id, a),
      member(id, b),
    ]);
    assert.equal(first.created, true);
    assert.equal(first.channel.name, "first");
    const again = await s.createChannel({ ...channel(id, b, "second"), type: "direct", memberCount: 2 }, [
      member(id, a, "admin"),
      member(id, b),
    ]);
    assert.equal(again.created, false);
    assert.equal(again.channel.name, "first");
    assert.equal(again.channel.createdBy, a);
    const ms = await s.listMembers(id);
    assert.deepEqual(ms.map((m) => m.userId).sort(), [a, b].sort());
    assert.equal(ms.find((m) => m.userId === a)?.role, "member", "an existing member is left as it is");
    const got = await s.getChannel(id);
    assert.equal(got?.type, "direct");
    assert.equal(got?.lastSeq, 0);
    assert.equal(got?.lastMessage, null);
    assert.equal(await s.getChannel(`dm_${a}_${c}`), null);
    const many = await s.getChannels([id, id, `dm_${a}_${c}`]);
    assert.deepEqual(
      many.map((x) => x.id),
      [id],
    );
    assert.deepEqual(await s.getChannels([]), []);
    await s.renameChannel(id, "renamed");
    assert.equal((await s.getChannel(id))?.name, "renamed");
  });

  test(`${name}: members are added once, counted, removed, and their roles set`, async () => {
    const s = await make();
    const id = s.newId();
    const [o, m1, m2] = [hex(), hex(), hex()];
    await s.createChannel({ ...channel(id, o), memberCount: 1 }, [member(id, o, "owner")]);
    await s.addMembers(id, [member(id, m1), member(id, m2), member(id, o, "member")]);
    assert.equal((await s.getChannel(id))?.memberCount, 3);
    assert.equal((await s.getMember(id, o))?.role, "owner", "adding an existing member changes nothing");
    assert.equal(await s.getMember(id, hex()), null);
    assert.deepEqual(
      (await s.listMemberships(m1)).map((m) => m.channelId),
      [id],
    );
    await s.setRole(id, m1, "admin");
    assert.equal((await s.getMember(id, m1))?.role, "admin");
    assert.equal(await s.removeMember(id, m2), true);
    assert.equal(await s.removeMember(id, m2), false);
    assert.equal((await s.getChannel(id))?.memberCount, 2);
    assert.deepEqual((await s.listMembers(id)).map((m) => m.userId).sort(), [o, m1].sort());
    assert.deepEqual(await s.listMemberships(m2), []);
    // One member at a time (a registration's join): counted once, a repeat changes nothing.
    const m3 = hex();
    await s.addMembers(id, [member(id, m3)]);
    await s.addMembers(id, [member(id, m3, "admin")]);
    assert.equal((await s.getChannel(id))?.memberCount, 3);
    assert.equal((await s.getMember(id, m3))?.role, "member");
    assert.equal(await s.removeMember(id, hex()), false);
    assert.equal((await s.getChannel(id))?.memberCount, 3, "removing a non-member changes no count");
  });

  test(`${name}: a channel is marked large once; memberships among channels and members by role`, async () => {
    const s = await make();
    const [a, b] = [s.newId(), s.newId()];
    const [o, ad, m1] = [hex(), hex(), hex()];
    await s.createChannel({ ...channel(a, o), memberCount: 1 }, [member(a, o, "owner")]);
    await s.createChannel({ ...channel(b, o), memberCount: 1 }, [member(b, o, "owner")]);
    await s.addMembers(a, [member(a, ad, "admin"), member(a, m1)]);
    assert.equal((await s.getChannel(a))?.largeSince, undefined, "small until marked");
    const first = new Date(Date.now() - 5000);
    await s.markLarge(a, first);
    await s.markLarge(a, new Date());
    await s.markLarge(`${hex()}`, new Date()); // no such channel: nothing happens
    assert.equal((await s.getChannel(a))?.largeSince?.getTime(), first.getTime(), "the first mark stays");
    const large = await s.largeChannelIds();
    assert.ok(large.includes(a) && !large.includes(b));
    assert.deepEqual(
      (await s.membershipsAmong(m1, [a, b, a, hex()])).map((m) => m.channelId),
      [a],
    );
    assert.deepEqual((await s.membershipsAmong(o, [b, a])).map((m) => m.channelId).sort(), [a, b].sort());
    assert.deepEqual(await s.membershipsAmong(m1, []), []);
    const privileged = await s.listMembersWithRoles(a, ["owner", "admin"]);
    assert.deepEqual(
      privileged.map((m) => `${m.userId}:${m.role}`).sort(),
      [`${o}:owner`, `${ad}:admin`].sort(),
    );
    assert.deepEqual(await s.listMembersWithRoles(b, ["admin"]), []);
  });

  test(`${name}: userIdsAfter pages user ids in ascending order after a given id`, async () => {
    const s = await make();
    const mine: string[] = [];
    for (let i = 0; i < 3; i++) {
      mine.push((await s.createUser({ username: `p${tag()}`, displayName: "P", passwordHash: "h" })).id);
    }
    mine.sort();
    const [first, second, third] = mine as [string, string, string];
    const after = await s.userIdsAfter(first, 1_000_000);
    assert.deepEqual(after, [...after].sort(), "ascending");
    assert.ok(after.every((id) => id > first));
    assert.ok(after.includes(second) && after.includes(third) && !after.includes(first));
    assert.equal((await s.userIdsAfter(null, 2)).length, 2);
    const tail = await s.userIdsAfter(third, 1_000_000);
    assert.ok(!tail.includes(third));
  });

  test(`${name}: channel settings are set in place; the backfill mark only moves forward`, async () => {
    const s = await make();
    const id = `official-${tag()}`;
    await s.createChannel({ ...channel(id, "0".repeat(24), "o"), type: "official", posting: "admins" }, []);
    assert.equal((await s.getChannel(id))?.posting, "admins");
    assert.equal((await s.getChannel(id))?.pinnedSeq, undefined);
    await s.updateChannelSettings(id, { posting: "everyone" });
    await s.updateChannelSettings(id, { pinnedSeq: 7 });
    assert.deepEqual(
      { posting: (await s.getChannel(id))?.posting, pinned: (await s.getChannel(id))?.pinnedSeq },
      { posting: "everyone", pinned: 7 },
    );
    await s.updateChannelSettings(id, { pinnedSeq: null });
    assert.equal((await s.getChannel(id))?.pinnedSeq, null);
    assert.equal(await s.backfillMark(id), null);
    const [lo, hi] = [hex(), hex()].sort() as [string, string];
    await s.raiseBackfillMark(id, hi);
    await s.raiseBackfillMark(id, lo);
    assert.equal(await s.backfillMark(id), hi, "never moved back");
    await Promise.all([s.raiseBackfillMark(id, lo), s.raiseBackfillMark(id, "f".repeat(24))]);
    assert.equal(await s.backfillMark(id), "f".repeat(24));
  });

  test(`${name}: receipt counts: members past a seq delivered (either mark) and read, the sender not counted`, async () => {
    const s = await make();
    const id = s.newId();
    const [sender, a, b, c] = [hex(), hex(), hex(), hex()];
    await s.createChannel(channel(id, sender), [
      member(id, sender, "owner"),
      member(id, a),
      member(id, b),
      member(id, c),
    ]);
    await s.raiseReceipts([
      { channelId: id, userId: sender, lastDeliveredSeq: 9, lastReadSeq: 9 },
      { channelId: id, userId: a, lastDeliveredSeq: 7, lastReadSeq: 2 },
      { channelId: id, userId: b, lastDeliveredSeq: 0, lastReadSeq: 8 },
      { channelId: id, userId: c, lastDeliveredSeq: 4, lastReadSeq: 4 },
    ]);
    assert.deepEqual(await s.countReceipts(id, 7, sender), { delivered: 2, read: 1 });
    assert.deepEqual(await s.countReceipts(id, 4, sender), { delivered: 3, read: 2 });
    assert.deepEqual(await s.countReceipts(id, 9, sender), { delivered: 0, read: 0 });
    assert.deepEqual(await s.countReceipts(id, 9, a), { delivered: 1, read: 1 });
  });

  test(`${name}: receipt marks are raised, never lowered, and only for members`, async () => {
    const s = await make();
    const id = s.newId();
    const [a, b] = [hex(), hex()];
    await s.createChannel(channel(id, a), [member(id, a)]);
    await s.raiseReceipts([{ channelId: id, userId: a, lastDeliveredSeq: 5, lastReadSeq: 3 }]);
    await s.raiseReceipts([
      { channelId: id, userId: a, lastDeliveredSeq: 4, lastReadSeq: 4 },
      { channelId: id, userId: b, lastDeliveredSeq: 9, lastReadSeq: 9 },
    ]);
    const m = await s.getMember(id, a);
    assert.deepEqual([m?.lastDeliveredSeq, m?.lastReadSeq], [5, 4]);
    assert.equal(await s.getMember(id, b), null, "a mark for a non-member creates nothing");
    await s.raiseReceipts([]);
  });

  test(`${name}: channel heads rise with a newer seq only; lastMessageAt follows the message`, async () => {
    const s = await make();
    const id = s.newId();
    const a = hex();
    await s.createChannel(channel(id, a), [member(id, a)]);
    const at = new Date(1_760_000_000_000);
    const head = (seq: number, body: string) => ({
      channelId: id,
      lastSeq: seq,
      lastMessage: { seq, senderId: a, body, hasFiles: false, createdAt: new Date(at.getTime() + seq) },
    });
    await s.raiseChannelHeads([head(7, "seven")]);
    await s.raiseChannelHeads([head(5, "five"), { ...head(9, "nine"), channelId: s.newId() }]);
    await s.raiseChannelHeads([head(7, "seven again")]);
    const c = await s.getChannel(id);
    assert.equal(c?.lastSeq, 7);
    assert.equal(c?.lastMessage?.body, "seven");
    assert.equal(c?.lastMessage?.seq, 7);
    assert.equal(c?.lastMessageAt.getTime(), at.getTime() + 7);
    await s.raiseChannelHeads([]);
  });

  test(`${name}: ordered inserts stop at the first duplicate (id or idempotency key)`, async () => {
    const s = await make();
    const ch = s.newId();
    assert.equal(await s.lastSeq(ch), 0);
    assert.equal(await s.lastMessage(ch), null);
    assert.deepEqual(await s.insertOrdered([message(ch, 1), message(ch, 2)]), { inserted: 2 });
    // a stale owner's number: the _id is taken
    const taken = await s.insertOrdered([message(ch, 3), message(ch, 2, "other", "x"), message(ch, 4)]);
    assert.equal(taken.inserted, 1);
    assert.equal(taken.failure?.index, 1);
    assert.equal(taken.failure?.duplicateKey, true);
    assert.equal(await s.lastSeq(ch), 3, "nothing after the failure is written");
    // a retried send: same channel, sender and clientMsgId under a new seq
    const retry = await s.insertOrdered([message(ch, 4, "s", "c1")]);
    assert.deepEqual([retry.inserted, retry.failure?.index, retry.failure?.duplicateKey], [0, 0, true]);
    // the same clientMsgId from another sender, or in another channel, is another message
    const other = s.newId();
    assert.deepEqual(await s.insertOrdered([message(ch, 4, "t", "c1"), message(other, 1, "s", "c1")]), {
      inserted: 2,
    });
    const found = await s.findByClientMsgId(ch, "s", "c1");
    assert.equal(found?.seq, 1);
    assert.deepEqual(found, message(ch, 1));
    assert.equal(await s.findByClientMsgId(ch, "s", "nope"), null);
    assert.equal(await s.findByClientMsgId(other, "t", "c1"), null);
    assert.deepEqual(await s.insertOrdered([]), { inserted: 0 });
    assert.equal((await s.lastMessage(ch))?.seq, 4);
  });

  test(`${name}: a failure deep in a long batch leaves exactly the messages before it`, async () => {
    const s = await make();
    const ch = s.newId();
    await s.insertOrdered([message(ch, 130)]);
    const batch = range(1, 200).map((q) => message(ch, q));
    const r = await s.insertOrdered(batch);
    assert.deepEqual([r.inserted, r.failure?.index, r.failure?.duplicateKey], [129, 129, true]);
    assert.deepEqual(seqs(await s.messagesAfter(ch, 0, 500)), range(1, 130));
  });

  test(`${name}: pages of history across blocks: after, before, between, newest`, async () => {
    const s = await make();
    const ch = s.newId();
    await s.createChannel(channel(ch, "s"), []);
    const all = range(1, 250).map((q) => message(ch, q));
    assert.deepEqual(await s.insertOrdered(all), { inserted: 250 });
    // the head copy is stale (0): the newest message is still found
    assert.equal((await s.lastMessage(ch))?.seq, 250);
    assert.equal(await s.lastSeq(ch), 250);
    assert.deepEqual(await s.lastMessage(ch), all[249]);
    assert.deepEqual(seqs(await s.messagesAfter(ch, 0, 3)), [1, 2, 3]);
    assert.deepEqual(seqs(await s.messagesAfter(ch, 95, 10)), range(96, 105));
    assert.deepEqual(seqs(await s.messagesAfter(ch, 95, 10, 99)), [96, 97, 98]);
    assert.deepEqual(seqs(await s.messagesAfter(ch, 248, 10)), [249, 250]);
    assert.deepEqual(await s.messagesAfter(ch, 250, 10), []);
    assert.deepEqual(seqs(await s.messagesBefore(ch, null, 3)), [248, 249, 250]);
    assert.deepEqual(seqs(await s.messagesBefore(ch, 201, 5)), range(196, 200));
    assert.deepEqual(seqs(await s.messagesBefore(ch, 3, 10)), [1, 2]);
    assert.deepEqual(await s.messagesBefore(ch, 1, 10), []);
    assert.deepEqual((await s.messagesAfter(ch, 149, 1))[0], all[149], "every field round-trips");
    // a fresh head makes no difference to the answer
    await s.raiseChannelHeads([
      {
        channelId: ch,
        lastSeq: 250,
        lastMessage: { seq: 250, senderId: "s", body: "b", hasFiles: false, createdAt: new Date() },
      },
    ]);
    assert.equal((await s.lastMessage(ch))?.seq, 250);
    const empty = s.newId();
    assert.deepEqual(await s.messagesBefore(empty, null, 10), []);
    assert.deepEqual(await s.messagesAfter(empty, 0, 10), []);
  });

  test(`${name}: events are found by their targets across blocks; a deleted message's content is scrubbed`, async () => {
    const s = await make();
    const id = s.newId();
    const a = hex();
    await s.createChannel(channel(id, a), [member(id, a)]);
    const file = await s.saveFile(
      { channelId: id, uploaderId: a, name: "f.txt", contentType: "text/plain" },
      Readable.from([Buffer.from("x")]),
    );
    const plain = (seq: number): StoredMessage => ({ ...message(id, seq, a), mentions: [a] });
    const event = (seq: number, extra: Partial<StoredMessage>): StoredMessage => ({
      ...message(id, seq, a),
      ...extra,
    });
    const docs: StoredMessage[] = [
      { ...plain(1), fileIds: [file.id], replyTo: undefined },
      ...range(2, 98).map(plain),
      { ...plain(99), replyTo: 1 },
      event(100, { kind: "edit", targetSeq: 1, body: "edited", mentions: [a] }),
      event(101, { kind: "reaction", targetSeq: 99, emoji: "👍", on: true, body: "" }),
      event(102, { kind: "reaction", targetSeq: 101, emoji: "x", on: false, body: "" }),
      event(103, { kind: "edit", targetSeq: 2, body: "other" }),
    ];
    for (const d of docs) if (d.replyTo === undefined) delete d.replyTo;
    assert.deepEqual(await s.insertOrdered(docs), { inserted: docs.length });
    const got = await s.eventsTargeting(id, [1, 99, 101]);
    assert.deepEqual(seqs(got), [100, 101, 102]);
    assert.deepEqual(got[1], docs[100]);
    assert.deepEqual(await s.messageAt(id, 99), docs[98]);
    assert.equal(await s.messageAt(id, 500), null);
    assert.deepEqual(await s.eventsTargeting(id, []), []);
    await s.raiseChannelHeads([
      {
        channelId: id,
        lastSeq: 1,
        lastMessage: { seq: 1, senderId: a, body: "b", hasFiles: true, createdAt: new Date() },
      },
    ]);
    // An edit of the preview's message revises it; an older edit redelivered, or one of another
    // message, changes nothing; after the delete, no edit brings the content back.
    await s.reviseHead(id, 1, 100, "edited");
    await s.reviseHead(id, 1, 90, "older");
    await s.reviseHead(id, 2, 101, "not the preview");
    const revised = (await s.getChannel(id))?.lastMessage;
    assert.deepEqual([revised?.body, revised?.edited, revised?.editSeq], ["edited", true, 100]);
    await s.scrubDeleted(id, 1);
    await s.scrubDeleted(id, 1);
    await s.reviseHead(id, 1, 102, "late");
    await assertScrubbed(s, id, file.id, docs);
  });

  test(`${name}: mentions are recorded once, listed per user and removed with their deleted message`, async () => {
    const s = await make();
    const [id, other] = [s.newId(), s.newId()];
    const [a, b] = [hex(), hex()];
    await s.addMentions(id, 3, [a, b]);
    await s.addMentions(id, 3, [a]);
    await s.addMentions(id, 5, [a]);
    await s.addMentions(other, 1, [a]);
    await s.addMentions(id, 6, []);
    const sorted = (xs: Array<{ channelId: string; seq: number }>) =>
      xs.map((x) => `${x.channelId}:${x.seq}`).sort();
    assert.deepEqual(
      sorted(await s.mentionsOf(a)),
      sorted([
        { channelId: id, seq: 3 },
        { channelId: id, seq: 5 },
        { channelId: other, seq: 1 },
      ]),
    );
    assert.deepEqual(await s.mentionsOf(b), [{ channelId: id, seq: 3 }]);
    await s.scrubDeleted(id, 3);
    assert.deepEqual(
      sorted(await s.mentionsOf(a)),
      sorted([
        { channelId: id, seq: 5 },
        { channelId: other, seq: 1 },
      ]),
    );
    assert.deepEqual(await s.mentionsOf(b), []);
  });

  test(`${name}: blocks are set once, listed oldest first, seen either way, and lifted`, async () => {
    const s = await make();
    const [a, b, c] = [hex(), hex(), hex()];
    await s.setBlocked(a, b, true);
    await s.setBlocked(a, c, true);
    await s.setBlocked(a, b, true);
    assert.deepEqual(
      (await s.blocksOf(a)).map((x) => x.userId),
      [b, c],
    );
    assert.deepEqual(await s.blocksOf(b), []);
    assert.deepEqual(await s.blockersOf(b), [a]);
    assert.deepEqual(await s.blockersOf(a), []);
    assert.equal(await s.isBlockedBetween(a, b), true);
    assert.equal(await s.isBlockedBetween(b, a), true);
    assert.equal(await s.isBlockedBetween(b, c), false);
    await s.setBlocked(a, b, false);
    await s.setBlocked(a, b, false);
    assert.equal(await s.isBlockedBetween(b, a), false);
    assert.deepEqual(
      (await s.blocksOf(a)).map((x) => x.userId),
      [c],
    );
  });

  test(`${name}: push devices: registered once per key, bounded per user, listed oldest first, removed by their owner`, async () => {
    const s = await make();
    const [a, b] = [hex(), hex()];
    const gw = { kind: "gateway", pushKey: `k${tag()}`, appId: "app" } as const;
    const wp = {
      kind: "webpush",
      endpoint: `https://push.example/${tag()}`,
      p256dh: "B".repeat(87),
      auth: "A".repeat(22),
    } as const;
    const first = await s.addPushDevice(a, gw, 2);
    assert.equal(first?.created, true);
    assert.deepEqual(await s.addPushDevice(a, gw, 2), { device: first?.device, created: false });
    const second = await s.addPushDevice(a, wp, 2);
    assert.equal(second?.created, true);
    assert.equal(await s.addPushDevice(a, { ...gw, pushKey: `k${tag()}` }, 2), null);
    // The same key is another device for another user.
    const other = await s.addPushDevice(b, gw, 2);
    assert.notEqual(other?.device.id, first?.device.id);
    const mine = await s.pushDevicesOf([a]);
    assert.deepEqual(
      mine.map((d) => d.id),
      [first?.device.id, second?.device.id],
    );
    assert.deepEqual(mine[1], {
      ...wp,
      id: second?.device.id,
      userId: a,
      createdAt: second?.device.createdAt,
    });
    assert.equal((await s.pushDevicesOf([a, b])).length, 3);
    assert.equal(await s.removePushDevice(b, first?.device.id ?? ""), false);
    assert.equal(await s.removePushDevice(a, first?.device.id ?? ""), true);
    assert.equal(await s.removePushDevice(a, first?.device.id ?? ""), false);
    assert.deepEqual(
      (await s.pushDevicesOf([a])).map((d) => d.id),
      [second?.device.id],
    );
  });

  test(`${name}: a member mutes and unmutes a channel`, async () => {
    const s = await make();
    const id = s.newId();
    const a = hex();
    await s.createChannel(channel(id, a), [member(id, a)]);
    assert.equal((await s.getMember(id, a))?.muted, undefined);
    await s.setMuted(id, a, true);
    assert.equal((await s.getMember(id, a))?.muted, true);
    assert.equal((await s.listMemberships(a))[0]?.muted, true);
    await s.setMuted(id, a, false);
    assert.equal((await s.getMember(id, a))?.muted, undefined);
  });

  test(`${name}: files keep their bytes and metadata; unknown or malformed ids are not found`, async () => {
    const s = await make();
    const ch = s.newId();
    const bytes = randomBytes(70_000);
    const f = await s.saveFile(
      { channelId: ch, uploaderId: "u1", name: "a b.png", contentType: "image/png" },
      Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]),
    );
    assert.match(f.id, /^[a-f0-9]{24}$/);
    assert.deepEqual(
      { ch: f.channelId, up: f.uploaderId, name: f.name, type: f.contentType, size: f.size },
      { ch, up: "u1", name: "a b.png", type: "image/png", size: 70_000 },
    );
    assert.ok(f.createdAt instanceof Date);
    assert.deepEqual(await s.getFile(f.id), f);
    assert.ok((await read(s.openFile(f.id))).equals(bytes));
    assert.deepEqual(
      (await s.getFiles([f.id, f.id, hex(), "not-an-id"])).map((x) => x.id),
      [f.id],
    );
    assert.equal(await s.getFile(hex()), null);
    assert.equal(await s.getFile("not-an-id"), null);
    assert.throws(
      () => s.openFile("not-an-id"),
      (e: unknown) => e instanceof ProtocolError && e.code === "NOT_FOUND",
    );
    await assert.rejects(read(s.openFile(hex())));
    await s.deleteFile(f.id);
    assert.equal(await s.getFile(f.id), null);
    await s.deleteFile(hex());
    await s.deleteFile("not-an-id");
  });

  test(`${name}: ping answers true while the server is up`, async () => {
    const s = await make();
    assert.equal(await s.ping(), true);
  });
}
