// UserSessions on the in-memory fakes (docs/chat-node.md#ports-and-fakes): bindings with their grace
// period, presence published to the listeners subscribed after construction, receipts written when
// a user's last socket goes, and the node's shutdown.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { PresenceState } from "../../src/ports.js";
import { FakeCluster } from "../support/fakes/cluster.js";
import { createLargeGroup } from "../support/fakes/large-group.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setup(grace = 40) {
  const c = new FakeCluster();
  const n = await c.node();
  const sessions = n.sessions({ bindingGraceMs: grace, heartbeatMs: 20, bindTimeoutMs: 200 });
  const seen: PresenceState[] = [];
  sessions.onPresence((s) => seen.push(s));
  return { c, n, sessions, seen };
}

test("a user's first socket binds them and brings them online once; more sockets are counted", async () => {
  const { n, sessions, seen } = await setup();
  await sessions.prepare("u1");
  await sessions.add("u1", "s1");
  await sessions.add("u1", "s2");
  assert.equal(n.broker.bindings.has("u1"), true);
  assert.deepEqual(seen, [{ userId: "u1", online: true, lastSeenAt: null }]);
  assert.equal(sessions.holds("u1"), true);
  assert.equal(sessions.socketCount("u1"), 2);
  assert.equal(sessions.connections, 2);
  assert.equal((await n.metrics.boundUsers.get()).values[0]?.value, 1);
  await sessions.shutdown();
});

test("the last socket going: offline with last seen (stored), receipts written, unbound after the grace", async () => {
  const { c, n, sessions, seen } = await setup();
  const u = await c.store.createUser({ username: "u", displayName: "u", passwordHash: "-" });
  await c.store.createChannel(
    {
      id: "g1",
      type: "group",
      name: "g",
      createdBy: u.id,
      createdAt: new Date(),
      lastSeq: 9,
      lastMessage: null,
      lastMessageAt: new Date(),
      memberCount: 1,
    },
    [
      {
        channelId: "g1",
        userId: u.id,
        role: "owner",
        joinedAt: new Date(),
        lastDeliveredSeq: 0,
        lastReadSeq: 0,
      },
    ],
  );
  await sessions.add(u.id, "s1");
  await sessions.add(u.id, "s2");
  n.receipts.record("g1", u.id, "read", 7);
  await sessions.remove(u.id, "s1");
  assert.equal(seen.length, 1, "still online with one socket");
  await sessions.remove(u.id, "s2");
  await sessions.remove(u.id, "s2"); // twice: nothing more
  assert.equal(seen.length, 2);
  const off = seen[1];
  assert.equal(off?.online, false);
  assert.ok(off?.lastSeenAt instanceof Date);
  assert.equal((await c.store.getUser(u.id))?.lastSeenAt?.getTime(), off?.lastSeenAt?.getTime());
  assert.equal((await c.store.getMember("g1", u.id))?.lastReadSeq, 7, "receipts written at once");
  assert.equal(n.broker.bindings.has(u.id), true, "the binding stays for the grace period");
  await sleep(80);
  assert.equal(n.broker.bindings.has(u.id), false);
});

test("a reconnect within the grace period keeps the binding", async () => {
  const { n, sessions } = await setup(60);
  await sessions.add("u1", "s1");
  await sessions.remove("u1", "s1");
  await sleep(20);
  await sessions.prepare("u1");
  await sessions.add("u1", "s2");
  await sleep(80);
  assert.equal(n.broker.bindings.has("u1"), true);
  await sessions.shutdown();
});

test("a socket that never arrives after the handshake leaves no binding behind", async () => {
  const { n, sessions } = await setup(30);
  await sessions.prepare("u1");
  assert.equal(n.broker.bindings.has("u1"), true);
  await sleep(70);
  assert.equal(n.broker.bindings.has("u1"), false);
});

test("a handshake whose socket never arrives: the user leaves presence with the binding (the lease would vouch for them)", async () => {
  const { c, sessions, seen } = await setup(30);
  await sessions.prepare("u1");
  assert.equal((await c.redis.node("reader", 30_000).get(["u1"]))[0]?.online, true);
  await sleep(70);
  assert.equal((await c.redis.node("reader", 30_000).get(["u1"]))[0]?.online, false);
  assert.deepEqual(
    seen.map((s) => s.online),
    [true, false],
  );
});

test("a user another node still holds does not go offline when they leave here", async () => {
  const { c, sessions, seen } = await setup();
  await c.redis.node("other-node", 30_000).join(["u1"]);
  await sessions.add("u1", "s1");
  await sessions.remove("u1", "s1");
  assert.deepEqual(seen, [], "online all along through the other node");
});

test("heartbeats bring back a user whose presence lapsed; a failing listener does not stop the others", async () => {
  const { c, sessions, seen } = await setup();
  const later: PresenceState[] = [];
  sessions.onPresence(() => {
    throw new Error("a broken listener");
  });
  const stop = sessions.onPresence((s) => later.push(s));
  await sessions.add("u1", "s1");
  assert.equal(later.length, 1);
  c.redis.live.delete("u1"); // Redis lost it: the node's lease is gone too
  c.redis.leases.clear();
  sessions.startHeartbeat();
  for (let i = 0; i < 50 && seen.length < 2; i++) await sleep(10);
  assert.deepEqual(seen[1], { userId: "u1", online: true, lastSeenAt: null });
  stop();
  c.redis.live.delete("u1");
  c.redis.leases.clear();
  for (let i = 0; i < 50 && seen.length < 3; i++) await sleep(10);
  assert.equal(seen.length, 3);
  assert.equal(later.length, 2, "an unsubscribed listener hears nothing more");
  await sessions.shutdown();
});

test("Redis or RabbitMQ down: a socket is still accepted; shutdown marks every user as left", async () => {
  const { c, n, sessions, seen } = await setup();
  c.redis.unavailable = true;
  await n.broker.close();
  await sessions.prepare("u1");
  await sessions.add("u1", "s1");
  assert.equal(sessions.holds("u1"), true);
  assert.equal(seen.length, 0, "no presence without Redis");
  c.redis.unavailable = false;
  await sessions.add("u2", "s2");
  await sessions.shutdown();
  assert.equal(sessions.connections, 0);
  assert.deepEqual(
    seen.map((s) => [s.userId, s.online]),
    [
      ["u2", true],
      ["u1", false],
      ["u2", false],
    ],
  );
});

/** A group of `members` already marked large (createChannel straight on the fake store). */
const largeGroup = (c: FakeCluster, id: string, members: string[]): Promise<void> =>
  createLargeGroup(c.store, id, members);

test("large channels: bound with a user's binding, unbound with the last member's, joined and left by control events", async () => {
  const { c, n, sessions } = await setup(30);
  // Ten large groups: more than a connect checks one by one, so the user's memberships are read once.
  for (let i = 0; i < 10; i++) await largeGroup(c, `big${i}`, i % 2 ? ["u1"] : ["u1", "u2"]);
  await largeGroup(c, "other", ["u3"]);
  await sessions.refreshLargeChannels();
  await sessions.prepare("u1");
  await sessions.add("u1", "s1");
  await sessions.prepare("u2");
  await sessions.add("u2", "s2");
  const bound = () => [...n.broker.channelBindings].sort();
  assert.deepEqual(bound(), Array.from({ length: 10 }, (_, i) => `big${i}`).sort(), "not 'other'");
  assert.deepEqual(sessions.channels.recipients("big0").sort(), ["u1", "u2"]);
  assert.deepEqual(sessions.channels.recipients("big1"), ["u1"]);
  assert.equal((await n.metrics.boundChannels.get()).values[0]?.value, 10);
  // u1 goes: after the grace only u2's five groups stay bound.
  await sessions.remove("u1", "s1");
  await sleep(80);
  assert.deepEqual(bound(), ["big0", "big2", "big4", "big6", "big8"]);
  // u2 is added to "other" and removed from big0 elsewhere: the control events move the bindings.
  await c.store.addMembers("other", [
    {
      channelId: "other",
      userId: "u2",
      role: "member",
      joinedAt: new Date(),
      lastDeliveredSeq: 0,
      lastReadSeq: 0,
    },
  ]);
  await sessions.channelMembersChanged({ t: "members", channelId: "other", origin: "x", added: ["u2"] });
  await sessions.channelMembersChanged({ t: "members", channelId: "big0", origin: "x", removed: ["u2"] });
  assert.deepEqual(bound(), ["big2", "big4", "big6", "big8", "other"]);
  assert.deepEqual(sessions.channels.recipients("big0"), []);
  // A group that just became large is adopted for its members bound here.
  await largeGroup(c, "grown", ["u9", "u2"]);
  await sessions.channelMembersChanged({ t: "members", channelId: "grown", origin: "x", large: true });
  assert.ok(bound().includes("grown"));
  assert.deepEqual(sessions.channels.recipients("grown"), ["u2"]);
  // A member added while this node missed the control event (a broker outage): the reread after the
  // reconnect finds them.
  await c.store.addMembers("big1", [
    {
      channelId: "big1",
      userId: "u2",
      role: "member",
      joinedAt: new Date(),
      lastDeliveredSeq: 0,
      lastReadSeq: 0,
    },
  ]);
  await sessions.refreshLargeChannels();
  assert.deepEqual(sessions.channels.recipients("big1"), [], "only new large channels without `all`");
  await sessions.refreshLargeChannels({ all: true });
  assert.deepEqual(sessions.channels.recipients("big1"), ["u2"]);
  assert.ok(bound().includes("big1"));
  await sessions.shutdown();
});
