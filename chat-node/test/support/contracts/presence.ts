// The PresenceStore contract (docs/chat-node.md#ports-and-fakes), run against RedisPresence on
// Redis (integration) and MemoryPresence (unit). `node(id, ttlMs)` gives one chat-node's adapter;
// all of them share one server.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import type { PresenceStore } from "../../../src/ports.js";

const id = () => randomBytes(8).toString("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function presenceContract(
  name: string,
  node: (nodeId: string, ttlMs: number) => PresenceStore | Promise<PresenceStore>,
): void {
  test(`${name}: a heartbeat reports who came online; leaving the last node takes them offline`, async () => {
    const a = await node(id(), 30_000);
    const [u, v] = [id(), id()];
    assert.deepEqual(await a.get([u]), [{ userId: u, online: false, lastSeenAt: null }]);
    assert.deepEqual((await a.heartbeat([u, v])).sort(), [u, v].sort());
    assert.deepEqual(await a.heartbeat([u, v]), [], "already online: nobody came online");
    assert.deepEqual(await a.get([u, v]), [
      { userId: u, online: true, lastSeenAt: null },
      { userId: v, online: true, lastSeenAt: null },
    ]);
    const at = new Date(Date.now() - 1234);
    assert.deepEqual(await a.leave(u, at), { userId: u, online: false, lastSeenAt: at });
    assert.deepEqual(await a.get([u, v]), [
      { userId: u, online: false, lastSeenAt: at },
      { userId: v, online: true, lastSeenAt: null },
    ]);
    assert.deepEqual(await a.heartbeat([u]), [u], "back online after leaving");
    assert.deepEqual((await a.get([u]))[0], { userId: u, online: true, lastSeenAt: null });
    assert.deepEqual(await a.heartbeat([]), []);
    assert.deepEqual(await a.get([]), []);
  });

  test(`${name}: a user held by two nodes stays online until both left`, async () => {
    const [a, b] = [await node(id(), 30_000), await node(id(), 30_000)];
    const u = id();
    assert.deepEqual(await a.heartbeat([u]), [u]);
    assert.deepEqual(await b.heartbeat([u]), [], "online through the other node");
    assert.deepEqual(await a.leave(u, new Date()), { userId: u, online: true, lastSeenAt: null });
    assert.equal((await b.get([u]))[0]?.online, true);
    const at = new Date();
    assert.deepEqual(await b.leave(u, at), { userId: u, online: false, lastSeenAt: at });
    assert.deepEqual((await a.get([u]))[0], { userId: u, online: false, lastSeenAt: at });
  });

  test(`${name}: a node that stops heartbeating (it died) stops vouching after the TTL`, async () => {
    const dead = await node(id(), 100);
    const live = await node(id(), 30_000);
    const u = id();
    assert.deepEqual(await dead.heartbeat([u]), [u]);
    assert.equal((await live.get([u]))[0]?.online, true);
    await sleep(180);
    assert.deepEqual(await live.get([u]), [{ userId: u, online: false, lastSeenAt: null }]);
    assert.deepEqual(await live.heartbeat([u]), [u], "the other node's heartbeat brings them back");
  });

  test(`${name}: onlineCount counts users online on any node, once each, until they leave or expire`, async () => {
    const [a, b] = [await node(id(), 30_000), await node(id(), 400)];
    const [u, v, w] = [id(), id(), id()];
    const base = await a.onlineCount();
    await a.heartbeat([u, v]);
    await b.heartbeat([v, w]);
    assert.equal(await a.onlineCount(), base + 3, "v on two nodes counts once");
    await a.leave(u, new Date());
    assert.equal(await b.onlineCount(), base + 2);
    await a.leave(v, new Date());
    assert.equal(await a.onlineCount(), base + 2, "v is still held by b");
    await sleep(600);
    assert.equal(await a.onlineCount(), base, "b stopped heartbeating: v and w expired");
  });

  test(`${name}: ping answers true while the server is up`, async () => {
    assert.equal(await (await node(id(), 1000)).ping(), true);
  });
}
