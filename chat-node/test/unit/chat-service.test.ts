// ChatService on the in-memory fakes (docs/chat-node.md#ports-and-fakes): the authorisation rules,
// limits and every error code of docs/protocol.md that the service layer decides, checked through
// transport/errors.ts as both transports map them.
import assert from "node:assert/strict";
import { randomBytes, scryptSync } from "node:crypto";
import { Readable } from "node:stream";
import { test } from "node:test";
import { DEFAULT_LIMITS, protocolSchemas, type ErrorCode } from "@vibetalk/protocol";
import { partitionOf } from "../../src/domain/hashing.js";
import { directChannelId, messageId } from "../../src/domain/ids.js";
import type { StoredMessage } from "../../src/domain/messages.js";
import { parseOrThrow } from "../../src/domain/validation.js";
import type { ControlEvent, PartitionDelivery, UserRecord } from "../../src/ports.js";
import { hashPassword, verifyPassword } from "../../src/services/auth.js";
import { toErrorInfo } from "../../src/transport/errors.js";
import { FakeCluster, type FakeNode } from "../support/fakes/cluster.js";

let hash: Promise<string> | null = null;
const PASSWORD = "correct horse battery";

/** Users straight into the store; with `PASSWORD` only where a test logs in (hashing is slow). */
async function users(c: FakeCluster, ...names: string[]): Promise<UserRecord[]> {
  const out: UserRecord[] = [];
  for (const n of names)
    out.push(await c.store.createUser({ username: n, displayName: n, passwordHash: "-" }));
  return out;
}

/** The ids of new users, one per name. */
async function ids<N extends string[]>(c: FakeCluster, ...names: N): Promise<{ [K in keyof N]: string }> {
  return (await users(c, ...names)).map((u) => u.id) as { [K in keyof N]: string };
}

async function userWithPassword(c: FakeCluster, name: string): Promise<UserRecord> {
  hash ??= hashPassword(PASSWORD);
  return c.store.createUser({ username: name, displayName: name, passwordHash: await hash });
}

/** Rejects with `code` as a client would see it (ProtocolError, or a port error mapped by type). */
async function refused(
  p: Promise<unknown>,
  code: ErrorCode,
  details?: Record<string, unknown>,
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    const { info } = toErrorInfo(e);
    assert.equal(info.code, code, `expected ${code}, got ${info.code}: ${info.message}`);
    if (details) assert.deepEqual(info.details, details);
    return true;
  });
}

async function setup(env: Record<string, string> = {}) {
  const c = new FakeCluster(env);
  const a = await c.node();
  return { c, a, s: a.service };
}

async function group(n: FakeNode, owner: string, memberIds: string[], name = "g"): Promise<string> {
  const r = await n.service.createChannel(owner, { type: "group", name, memberIds });
  return r.channel.id;
}

function stored(channelId: string, seq: number, senderId: string): StoredMessage {
  return {
    id: messageId(channelId, seq),
    channelId,
    seq,
    senderId,
    clientMsgId: `m${seq}`,
    body: `b${seq}`,
    fileIds: [],
    createdAt: new Date(1_700_000_000_000 + seq),
  };
}

async function settle(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(ok(), "the expected events did not arrive");
}

/** Control events every node of the cluster received, from a watcher node. */
async function controlWatcher(c: FakeCluster): Promise<ControlEvent[]> {
  const w = await c.brokerServer.connect("watcher");
  const got: ControlEvent[] = [];
  w.onControlEvent((e) => got.push(e));
  return got;
}

// ---- accounts ----

test("register gives a token for the new user; a taken username is CONFLICT", async () => {
  const { c, s, a } = await setup();
  const r = await s.register({ username: "ann", password: PASSWORD });
  assert.deepEqual([r.user.username, r.user.displayName], ["ann", "ann"]);
  assert.equal((await a.tokens.verify(r.token)).userId, r.user.id);
  const rec = await c.store.getUser(r.user.id);
  assert.equal((await verifyPassword(PASSWORD, rec?.passwordHash ?? "")).ok, true, "stored as a hash");
  assert.notEqual(rec?.passwordHash, PASSWORD);
  await refused(s.register({ username: "ann", password: "another password" }), "CONFLICT");
});

test("login: a wrong password and an unknown user are the same UNAUTHENTICATED", async () => {
  const { c, s, a } = await setup();
  const ann = await userWithPassword(c, "ann");
  const ok = await s.login({ username: "ANN", password: PASSWORD });
  assert.equal((await a.tokens.verify(ok.token)).userId, ann.id);
  const wrong = await s.login({ username: "ann", password: "wrong password" }).catch((e: unknown) => e);
  const unknown = await s.login({ username: "nobody", password: PASSWORD }).catch((e: unknown) => e);
  assert.deepEqual(toErrorInfo(wrong).info, toErrorInfo(unknown).info);
  assert.equal(toErrorInfo(wrong).info.code, "UNAUTHENTICATED");
});

test("login rehashes a password stored with older settings (scrypt) and logs in", async () => {
  const { c, s } = await setup();
  const salt = randomBytes(16);
  const key = scryptSync(PASSWORD, salt, 32, { N: 1024, r: 8, p: 1 });
  const legacy = `scrypt$1024$8$1$${salt.toString("base64")}$${key.toString("base64")}`;
  const u = await c.store.createUser({ username: "old", displayName: "Old", passwordHash: legacy });
  await s.login({ username: "old", password: PASSWORD });
  const now = (await c.store.getUser(u.id))?.passwordHash ?? "";
  assert.match(now, /^\$argon2id\$/);
  assert.equal((await verifyPassword(PASSWORD, now)).ok, true);
});

test("logout ends that token only and tells every node", async () => {
  const { c, s, a } = await setup();
  const control = await controlWatcher(c);
  const [ann] = await users(c, "ann");
  const t1 = await a.tokens.issue(ann?.id ?? "");
  const t2 = await a.tokens.issue(ann?.id ?? "");
  const session = await a.tokens.verify(t1);
  await s.logout(session);
  await refused(a.tokens.verify(t1), "UNAUTHENTICATED");
  assert.equal((await a.tokens.verify(t2)).userId, ann?.id);
  await settle(() => control.length === 1);
  assert.deepEqual(control[0], { t: "sessions", userId: ann?.id, tokenId: session.tokenId });
});

test("changePassword: the current password is checked (FORBIDDEN); every other session ends", async () => {
  const { c, s, a } = await setup();
  const control = await controlWatcher(c);
  const ann = await userWithPassword(c, "ann");
  const id = ann.id;
  const oldToken = await a.tokens.issue(id);
  const old = await a.tokens.verify(oldToken);
  await refused(
    s.changePassword(old, { currentPassword: "wrong one", newPassword: "a new password" }),
    "FORBIDDEN",
  );
  assert.equal((await c.store.getUser(id))?.passwordHash, ann.passwordHash, "nothing changed");
  await new Promise((r) => setTimeout(r, 5)); // the new token is issued after the cut-off
  const r = await s.changePassword(old, { currentPassword: PASSWORD, newPassword: "a new password" });
  await refused(a.tokens.verify(oldToken), "UNAUTHENTICATED");
  assert.equal((await a.tokens.verify(r.token)).userId, id);
  assert.equal(
    (await verifyPassword("a new password", (await c.store.getUser(id))?.passwordHash ?? "")).ok,
    true,
  );
  await settle(() => control.length === 1);
  assert.equal(control[0]?.t, "sessions");
  const gone = { ...old, userId: "someone-else" };
  await refused(
    s.changePassword(gone, { currentPassword: PASSWORD, newPassword: "x y z w v" }),
    "UNAUTHENTICATED",
  );
  await refused(s.me("0123456789abcdef01234567"), "UNAUTHENTICATED");
});

test("searchUsers pages by username; a bad cursor is INVALID_ARGUMENT", async () => {
  const { c, s } = await setup();
  await users(c, "bob", "bea", "ben", "zed");
  const p1 = await s.searchUsers({ query: "b", limit: 2 });
  assert.deepEqual(
    p1.users.map((u) => u.username),
    ["bea", "ben"],
  );
  assert.ok(p1.nextCursor);
  const p2 = await s.searchUsers({ query: "b", limit: 2, cursor: p1.nextCursor ?? "" });
  assert.deepEqual(
    p2.users.map((u) => u.username),
    ["bob"],
  );
  assert.equal(p2.nextCursor, null);
  await refused(s.searchUsers({ query: "b", cursor: "%%%" }), "INVALID_ARGUMENT");
});

// ---- channels ----

test("direct channels: not with yourself, not with nobody; the pair decides the id, once", async () => {
  const { c, s, a } = await setup();
  const [ann, bob] = await users(c, "ann", "bob");
  const [A, B] = [ann?.id ?? "", bob?.id ?? ""];
  await refused(s.createChannel(A, { type: "direct", userId: A }), "INVALID_ARGUMENT");
  await refused(s.createChannel(A, { type: "direct", userId: "0123456789abcdef01234567" }), "NOT_FOUND");
  await a.broker.bindUser(B);
  const first = await s.createChannel(A, { type: "direct", userId: B });
  assert.equal(first.created, true);
  assert.equal(first.channel.id, directChannelId(A, B));
  const again = await s.createChannel(B, { type: "direct", userId: A });
  assert.equal(again.created, false);
  assert.equal(again.channel.id, first.channel.id);
  assert.deepEqual(
    (await c.store.listMembers(first.channel.id)).map((m) => m.role),
    ["member", "member"],
  );
  await settle(() => a.events.length === 1);
  assert.equal(a.events[0]?.event.t, "channel", "only the first create is announced");
  assert.deepEqual([...(a.events[0]?.recipients ?? [])].sort(), [A, B].sort());
});

test("groups: at most maxGroupMembers, every member must exist, the creator owns it", async () => {
  const { c, a, s } = await setup({ LIMIT_MAX_GROUP_MEMBERS: "3" });
  const [o, m1, m2, m3] = await users(c, "o", "m1", "m2", "m3");
  const ids = [m1, m2, m3].map((u) => u?.id ?? "");
  const O = o?.id ?? "";
  await refused(s.createChannel(O, { type: "group", name: "big", memberIds: ids }), "INVALID_ARGUMENT");
  const ghost = "0123456789abcdef01234567";
  await refused(
    s.createChannel(O, { type: "group", name: "g", memberIds: [ids[0] ?? "", ghost] }),
    "NOT_FOUND",
    {
      userIds: [ghost],
    },
  );
  assert.equal(c.store.channels.size, 0, "nothing stored for a refused group");
  // the creator and repeats do not count twice
  const id = await group(a, O, [O, ids[0] ?? "", ids[0] ?? "", ids[1] ?? ""]);
  const ms = await c.store.listMembers(id);
  assert.equal(ms.length, 3);
  assert.equal(ms.find((m) => m.userId === O)?.role, "owner");
  assert.equal((await c.store.getChannel(id))?.memberCount, 3);
});

test("channel details and history are for members only: FORBIDDEN, or NOT_FOUND for no channel", async () => {
  const { c, a, s } = await setup();
  const [o, m, x] = await users(c, "o", "m", "x");
  const id = await group(a, o?.id ?? "", [m?.id ?? ""]);
  const d = await s.channelDetails(m?.id ?? "", id);
  assert.deepEqual(d.members.map((mm) => mm.userId).sort(), [o?.id, m?.id].sort());
  await refused(s.channelDetails(x?.id ?? "", id), "FORBIDDEN");
  await refused(s.messages(x?.id ?? "", id, {}), "FORBIDDEN");
  await refused(s.channelDetails(x?.id ?? "", "0123456789abcdef01234567"), "NOT_FOUND");
  await refused(s.sync(x?.id ?? "", { channels: [{ channelId: id, afterSeq: 0 }] }), "FORBIDDEN");
});

test("rename: owner and admins, never members, never a direct channel", async () => {
  const { c, a, s } = await setup();
  const [o, ad, m] = await users(c, "o", "ad", "m");
  const [O, AD, M] = [o?.id ?? "", ad?.id ?? "", m?.id ?? ""];
  const id = await group(a, O, [AD, M]);
  await s.setRole(O, id, AD, "admin");
  await refused(s.updateChannel(M, id, { name: "nope" }), "FORBIDDEN");
  assert.equal((await s.updateChannel(AD, id, { name: "by admin" })).name, "by admin");
  assert.equal((await s.updateChannel(O, id, { name: "by owner" })).name, "by owner");
  const dm = (await s.createChannel(O, { type: "direct", userId: M })).channel.id;
  await refused(s.updateChannel(O, dm, { name: "dm" }), "FORBIDDEN");
});

test("addMembers: owner and admins only, the group limit, known users; existing members are kept", async () => {
  const { c, a, s } = await setup({ LIMIT_MAX_GROUP_MEMBERS: "4" });
  const [O, M, N1, N2, N3] = await ids(c, "o", "m", "n1", "n2", "n3");
  const id = await group(a, O, [M]);
  await refused(s.addMembers(M, id, [N1]), "FORBIDDEN");
  await refused(s.addMembers(O, id, [N1, N2, N3]), "INVALID_ARGUMENT");
  await refused(s.addMembers(O, id, ["0123456789abcdef01234567"]), "NOT_FOUND");
  const r = await s.addMembers(O, id, [N1, N2, M, N1]);
  assert.equal(r.members.length, 4);
  assert.equal(r.channel.memberCount, 4);
  assert.equal(r.members.find((x) => x.userId === O)?.role, "owner");
  // full now: one more is over the limit, an existing member is not
  await refused(s.addMembers(O, id, [N3]), "INVALID_ARGUMENT");
  assert.equal((await s.addMembers(O, id, [M])).members.length, 4);
});

test("setRole: the owner only; not on a non-member (NOT_FOUND) or the owner", async () => {
  const { c, a, s } = await setup();
  const [o, ad, m, x] = await users(c, "o", "ad", "m", "x");
  const [O, AD, M] = [o?.id ?? "", ad?.id ?? "", m?.id ?? ""];
  const id = await group(a, O, [AD, M]);
  await s.setRole(O, id, AD, "admin");
  await refused(s.setRole(AD, id, M, "admin"), "FORBIDDEN");
  await refused(s.setRole(O, id, x?.id ?? "", "admin"), "NOT_FOUND");
  await refused(s.setRole(O, id, O, "member"), "FORBIDDEN");
  const r = await s.setRole(O, id, AD, "member");
  assert.equal(r.members.find((mm) => mm.userId === AD)?.role, "member");
});

test("removeMember: who may remove whom; leaving; the owner's heir; nobody leaves a direct channel", async () => {
  const { c, a, s } = await setup();
  const [o, ad1, ad2, m1, m2] = await users(c, "o", "ad1", "ad2", "m1", "m2");
  const [O, AD1, AD2, M1, M2] = [o, ad1, ad2, m1, m2].map((u) => u?.id ?? "") as [
    string,
    string,
    string,
    string,
    string,
  ];
  const id = await group(a, O, [AD1, AD2, M1, M2]);
  await s.setRole(O, id, AD1, "admin");
  await s.setRole(O, id, AD2, "admin");
  await refused(s.removeMember(M1, id, M2), "FORBIDDEN");
  await refused(s.removeMember(AD1, id, AD2), "FORBIDDEN");
  await refused(s.removeMember(AD1, id, O), "FORBIDDEN");
  await refused(s.removeMember(O, id, "0123456789abcdef01234567"), "NOT_FOUND");
  await a.broker.bindUser(M2);
  await s.removeMember(AD1, id, M2);
  await settle(() => a.events.some((e) => e.event.t === "channel" && e.event.event.change === "removed"));
  const removed = a.events.find((e) => e.event.t === "channel" && e.event.event.change === "removed");
  assert.deepEqual(removed?.recipients, [M2], "the removed member is told");
  await refused(s.send(M2, { channelId: id, clientMsgId: "x1", body: "still here?" }), "FORBIDDEN");
  await s.removeMember(M1, id, M1); // leaving needs no role
  // the owner leaves: an admin inherits (the earliest joined of them)
  await s.removeMember(O, id, O);
  const roles = new Map((await c.store.listMembers(id)).map((m) => [m.userId, m.role]));
  assert.equal(roles.get(AD1), "owner");
  assert.equal(roles.get(AD2), "admin");
  assert.equal(roles.has(O), false);
  const dm = (await s.createChannel(AD1, { type: "direct", userId: AD2 })).channel.id;
  await refused(s.removeMember(AD1, dm, AD1), "FORBIDDEN");
});

test("a group without admins passes ownership to its longest member", async () => {
  const { c, a, s } = await setup();
  const [o, m1, m2] = await users(c, "o", "m1", "m2");
  const id = await group(a, o?.id ?? "", [m1?.id ?? ""]);
  await new Promise((r) => setTimeout(r, 3));
  await s.addMembers(o?.id ?? "", id, [m2?.id ?? ""]);
  await s.removeMember(o?.id ?? "", id, o?.id ?? "");
  assert.equal((await c.store.getMember(id, m1?.id ?? ""))?.role, "owner");
  assert.equal((await c.store.getMember(id, m2?.id ?? ""))?.role, "member");
});

test("a member removed on one node is refused on another at once (membership versions)", async () => {
  const { c, a } = await setup();
  const b = await c.node();
  const [o, m] = await users(c, "o", "m");
  const id = await group(a, o?.id ?? "", [m?.id ?? ""]);
  const M = m?.id ?? "";
  await b.service.send(M, { channelId: id, clientMsgId: "before", body: "hi" }); // b caches the members
  await a.service.removeMember(o?.id ?? "", id, M);
  await refused(b.service.send(M, { channelId: id, clientMsgId: "after", body: "hi" }), "FORBIDDEN");
});

test("listChannels: newest activity first, paged; direct channels name the peer; pending receipts count", async () => {
  const { c, a, s } = await setup();
  const [o, p, q] = await users(c, "o", "p", "q");
  const [O, P, Q] = [o, p, q].map((u) => u?.id ?? "") as [string, string, string];
  const g1 = await group(a, O, [P], "one");
  const dm = (await s.createChannel(O, { type: "direct", userId: Q })).channel.id;
  const g2 = await group(a, O, [Q], "two");
  const at = (ms: number) => ({ seq: 1, senderId: O, body: "x", hasFiles: false, createdAt: new Date(ms) });
  await c.store.insertOrdered([stored(g1, 1, O)]);
  await c.store.raiseChannelHeads([
    { channelId: g1, lastSeq: 1, lastMessage: at(Date.now() + 3000) },
    { channelId: dm, lastSeq: 1, lastMessage: at(Date.now() + 2000) },
  ]);
  a.receipts.record(g1, O, "read", 1);
  const p1 = await s.listChannels(O, undefined, 2);
  assert.deepEqual(
    p1.channels.map((x) => x.id),
    [g1, dm],
  );
  assert.equal(p1.channels[0]?.lastReadSeq, 1, "a receipt not yet written counts");
  assert.equal(p1.channels[1]?.peer?.id, Q);
  const p2 = await s.listChannels(O, p1.nextCursor ?? undefined, 2);
  assert.deepEqual(
    p2.channels.map((x) => x.id),
    [g2],
  );
  assert.equal(p2.nextCursor, null);
  await refused(s.listChannels(O, "garbage", 2), "INVALID_ARGUMENT");
  assert.deepEqual(
    (await s.listChannels(P, undefined, 10)).channels.map((x) => x.id),
    [g1],
  );
});

// ---- messages ----

test("send: members only; confirmed on the channel's partition with what the server decides", async () => {
  const { c, a, s } = await setup();
  const [o, m, x] = await users(c, "o", "m", "x");
  const id = await group(a, o?.id ?? "", [m?.id ?? ""]);
  await refused(s.send(x?.id ?? "", { channelId: id, clientMsgId: "c1", body: "hi" }), "FORBIDDEN");
  await refused(
    s.send(x?.id ?? "", { channelId: "0123456789abcdef01234567", clientMsgId: "c1", body: "hi" }),
    "NOT_FOUND",
  );
  const t0 = Date.now();
  await s.send(m?.id ?? "", { channelId: id, clientMsgId: "c1", body: "hello", fileIds: [] });
  const got: PartitionDelivery[] = [];
  const sub = await a.broker.subscribePartition(partitionOf(id, a.config.partitions), 10, (d) => got.push(d));
  await settle(() => got.length === 1);
  const msg = got[0]?.message;
  assert.deepEqual(
    { ...msg, sentAt: 0 },
    { channelId: id, senderId: m?.id, clientMsgId: "c1", body: "hello", fileIds: [], sentAt: 0 },
  );
  assert.ok((msg?.sentAt ?? 0) >= t0);
  assert.equal((await a.metrics.messagesAccepted.get()).values[0]?.value, 1);
  await sub.close();
});

test("send with files: only files the sender uploaded to this channel (INVALID_ARGUMENT)", async () => {
  const { c, a, s } = await setup();
  const [o, m] = await users(c, "o", "m");
  const [O, M] = [o?.id ?? "", m?.id ?? ""];
  const g1 = await group(a, O, [M]);
  const g2 = await group(a, O, [M]);
  const file = (uid: string, ch: string) =>
    s.upload(uid, ch, "a.png", "image/png", Readable.from([Buffer.from("png")]));
  const mine = await file(M, g1);
  const theirs = await file(O, g1);
  const elsewhere = await file(M, g2);
  for (const f of [theirs.id, elsewhere.id, "0123456789abcdef01234567"]) {
    await refused(
      s.send(M, { channelId: g1, clientMsgId: `f-${f}`, body: "", fileIds: [f] }),
      "INVALID_ARGUMENT",
    );
  }
  await s.send(M, { channelId: g1, clientMsgId: "ok", body: "", fileIds: [mine.id, mine.id] });
  assert.equal(
    c.brokerServer.depth(partitionOf(g1, a.config.partitions)),
    1,
    "only the valid send was published",
  );
});

test("the broker or the store down is UNAVAILABLE (by type); any other failure INTERNAL", async () => {
  const { c, a, s } = await setup();
  const [o] = await users(c, "o");
  const id = await group(a, o?.id ?? "", []);
  c.brokerServer.blocked = true;
  await refused(s.send(o?.id ?? "", { channelId: id, clientMsgId: "c1", body: "hi" }), "UNAVAILABLE");
  c.brokerServer.blocked = false;
  c.store.unavailable = true;
  await refused(s.messages(o?.id ?? "", "0123456789abcdef01234567", {}), "UNAVAILABLE");
  await refused(s.me(o?.id ?? ""), "UNAVAILABLE");
  c.store.unavailable = false;
  const broken = Object.assign(c.store, {});
  const original = broken.getUser.bind(broken);
  broken.getUser = async () => {
    throw new TypeError("a bug");
  };
  const e = await s.me(o?.id ?? "").catch((err: unknown) => err);
  assert.deepEqual(toErrorInfo(e), { info: { code: "INTERNAL", message: "internal error" }, internal: true });
  broken.getUser = original;
});

test("a body over the limit is PAYLOAD_TOO_LARGE before the service sees it; control characters are refused", () => {
  const { MessageSend } = protocolSchemas({ ...DEFAULT_LIMITS, maxBodyBytes: 16 });
  const base = { channelId: "0123456789abcdef01234567", clientMsgId: "c1" };
  assert.equal(parseOrThrow(MessageSend, { ...base, body: "x".repeat(16) }).body.length, 16);
  assert.throws(
    () => parseOrThrow(MessageSend, { ...base, body: "x".repeat(17) }),
    (e: unknown) => toErrorInfo(e).info.code === "PAYLOAD_TOO_LARGE",
  );
  assert.throws(
    () => parseOrThrow(MessageSend, { ...base, body: "a\u0000b" }),
    (e: unknown) => toErrorInfo(e).info.code === "INVALID_ARGUMENT",
  );
});

test("history pages: afterSeq, beforeSeq and the newest page", async () => {
  const { c, a, s } = await setup();
  const [o] = await users(c, "o");
  const O = o?.id ?? "";
  const id = await group(a, O, []);
  await c.store.insertOrdered(Array.from({ length: 30 }, (_, i) => stored(id, i + 1, O)));
  const seqs = (ms: { seq: number }[]) => ms.map((m) => m.seq);
  assert.deepEqual(seqs((await s.messages(O, id, { limit: 3 })).messages), [28, 29, 30]);
  assert.deepEqual(seqs((await s.messages(O, id, { afterSeq: 5, limit: 3 })).messages), [6, 7, 8]);
  assert.deepEqual(seqs((await s.messages(O, id, { beforeSeq: 5, limit: 10 })).messages), [1, 2, 3, 4]);
  assert.deepEqual(
    seqs((await s.messages(O, id, { afterSeq: 5, beforeSeq: 8, limit: 10 })).messages),
    [6, 7],
  );
});

test("receipts: only for stored messages (INVALID_ARGUMENT); told to the members once per rise", async () => {
  const { c, a, s } = await setup();
  const [o, m] = await users(c, "o", "m");
  const [O, M] = [o?.id ?? "", m?.id ?? ""];
  const id = await group(a, O, [M]);
  await c.store.insertOrdered([stored(id, 1, O), stored(id, 2, O)]);
  await refused(s.receipt(M, { channelId: id, kind: "read", seq: 3 }), "INVALID_ARGUMENT", { field: "seq" });
  await a.broker.bindUser(O);
  const before = a.events.length;
  await s.receipt(M, { channelId: id, kind: "read", seq: 2 });
  await s.receipt(M, { channelId: id, kind: "read", seq: 1 }); // lower: nothing to tell
  await settle(() => a.events.length === before + 1);
  await new Promise((r) => setImmediate(r));
  assert.equal(a.events.length, before + 1);
  assert.deepEqual(a.events[before]?.event, {
    t: "receipt",
    receipt: { channelId: id, userId: M, kind: "read", seq: 2 },
  });
  assert.deepEqual(a.receipts.peek(id, M)?.lastReadSeq, 2);
  await refused(s.receipt("0123456789abcdef01234567", { channelId: id, kind: "read", seq: 1 }), "FORBIDDEN");
});

test("sync: every channel after its seq, within the per-channel and total budgets, the rest named", async () => {
  const { c, a, s } = await setup({ LIMIT_MAX_PAGE: "3" });
  a.config.limits.maxSyncMessages = 5; // no variable sets it
  const [o] = await users(c, "o");
  const O = o?.id ?? "";
  const [g1, g2, g3] = [await group(a, O, []), await group(a, O, []), await group(a, O, [])];
  for (const g of [g1, g2, g3]) await c.store.insertOrdered([1, 2, 3, 4].map((q) => stored(g, q, O)));
  const r = await s.sync(O, {
    channels: [
      { channelId: g1, afterSeq: 0 },
      { channelId: g2, afterSeq: 2 },
      { channelId: g3, afterSeq: 0 },
    ],
  });
  assert.deepEqual(
    r.messages.map((m) => [m.channelId, m.seq]),
    [
      [g1, 1],
      [g1, 2],
      [g1, 3],
      [g2, 3],
      [g2, 4],
    ],
  );
  assert.deepEqual(r.more, [g1, g3]);
});

test("presence is shared only with contacts (FORBIDDEN names the others); last seen from the store", async () => {
  const { c, a, s } = await setup();
  const [o, p, q, x] = await users(c, "o", "p", "q", "x");
  const [O, P, Q, X] = [o, p, q, x].map((u) => u?.id ?? "") as [string, string, string, string];
  await group(a, O, [P]);
  await s.createChannel(O, { type: "direct", userId: Q });
  await s.requireContacts(O, [P, Q, O]);
  await refused(s.requireContacts(O, [P, X]), "FORBIDDEN", { userIds: [X] });
  await a.presence.join([P]);
  await c.store.setLastSeen(Q, new Date(1_750_000_000_000));
  assert.deepEqual(await s.presenceOf([P, Q, X]), [
    { userId: P, online: true, lastSeenAt: null },
    { userId: Q, online: false, lastSeenAt: new Date(1_750_000_000_000).toISOString() },
    { userId: X, online: false, lastSeenAt: null },
  ]);
});

test("files: members upload allowed types with a safe name; only members read them", async () => {
  const { c, a, s } = await setup();
  const [o, x] = await users(c, "o", "x");
  const [O, X] = [o?.id ?? "", x?.id ?? ""];
  const id = await group(a, O, []);
  const png = () => Readable.from([Buffer.from("bytes")]);
  await refused(s.upload(X, id, "a.png", "image/png", png()), "FORBIDDEN");
  await refused(s.upload(O, id, "a.exe", "application/x-msdownload", png()), "INVALID_ARGUMENT");
  const f = await s.upload(O, id, "../a/b\u0001.png", "IMAGE/PNG; charset=binary", png());
  assert.equal(f.name, ".._a_b_.png");
  assert.equal(f.contentType, "image/png");
  assert.equal((await s.fileFor(O, f.id)).id, f.id);
  await refused(s.fileFor(X, f.id), "FORBIDDEN");
  await refused(s.fileFor(O, "0123456789abcdef01234567"), "NOT_FOUND");
});
