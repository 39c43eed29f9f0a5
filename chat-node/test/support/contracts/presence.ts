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
  test(`${name}: joining reports who came online; leaving the last node takes them offline`, async () => {
    const a = await node(id(), 30_000);
    const [u, v] = [id(), id()];
    assert.deepEqual(await a.get([u]), [{ userId: u, online: false, lastSeenAt: null }]);
    assert.deepEqual((await a.join([u, v])).sort(), [u, v].sort());
    assert.deepEqual(await a.get([u, v]), [
      { userId: u, online: true, lastSeenAt: null },
      { userId: v, online: true, lastSeenAt: null },
    ]);
    assert.deepEqual(await a.renew(() => [u, v]), [], "a live lease renewed: nobody came online");
    const at = new Date(Date.now() - 1234);
    assert.deepEqual(await a.leave(u, at), { userId: u, online: false, lastSeenAt: at });
    assert.deepEqual(await a.get([u, v]), [
      { userId: u, online: false, lastSeenAt: at },
      { userId: v, online: true, lastSeenAt: null },
    ]);
    assert.deepEqual(await a.join([u]), [u], "back online after leaving");
    assert.deepEqual((await a.get([u]))[0], { userId: u, online: true, lastSeenAt: null });
    assert.deepEqual(await a.join([]), []);
    assert.deepEqual(await a.get([]), []);
  });

  test(`${name}: a user held by two nodes stays online until both left`, async () => {
    const [a, b] = [await node(id(), 30_000), await node(id(), 30_000)];
    const u = id();
    assert.deepEqual(await a.join([u]), [u]);
    assert.deepEqual(await b.join([u]), [], "online through the other node");
    assert.deepEqual(await a.leave(u, new Date()), { userId: u, online: true, lastSeenAt: null });
    assert.equal((await b.get([u]))[0]?.online, true);
    const at = new Date();
    assert.deepEqual(await b.leave(u, at), { userId: u, online: false, lastSeenAt: at });
    assert.deepEqual((await a.get([u]))[0], { userId: u, online: false, lastSeenAt: at });
  });

  test(`${name}: renewing the lease keeps every held user online past the TTL`, async () => {
    // A TTL four renewal periods long: a loaded machine may delay one renewal by a few hundred ms.
    const a = await node(id(), 600);
    const u = id();
    assert.deepEqual(await a.join([u]), [u]);
    for (let i = 0; i < 8; i++) {
      await sleep(150);
      assert.deepEqual(await a.renew(() => [u]), [], `renewal ${i}: the lease was live`);
    }
    assert.equal(
      (await (await node(id(), 1000)).get([u]))[0]?.online,
      true,
      "online 1.2 s (twice the TTL) after joining",
    );
    await a.leave(u, new Date());
  });

  test(`${name}: a node that stops renewing (it died) stops vouching after the TTL; a lapsed lease rejoins its users`, async () => {
    const dead = await node(id(), 100);
    const live = await node(id(), 30_000);
    const [u, v] = [id(), id()];
    assert.deepEqual((await dead.join([u, v])).sort(), [u, v].sort());
    assert.equal((await live.get([u]))[0]?.online, true);
    await sleep(180);
    assert.deepEqual(await live.get([u, v]), [
      { userId: u, online: false, lastSeenAt: null },
      { userId: v, online: false, lastSeenAt: null },
    ]);
    assert.deepEqual(await live.join([u]), [u], "the other node brings them back");
    // The stalled node comes back: its renewal finds the lease gone and joins what it holds again.
    assert.deepEqual(
      await dead.renew(() => [u, v]),
      [v],
      "v came online again; u was online through the other node",
    );
    assert.equal((await live.get([v]))[0]?.online, true);
    await Promise.all([dead.leave(u, new Date()), dead.leave(v, new Date()), live.leave(u, new Date())]);
  });

  test(`${name}: onlineCount counts users online on any node, once each, until they leave or expire`, async () => {
    const [a, b] = [await node(id(), 30_000), await node(id(), 400)];
    const [u, v, w] = [id(), id(), id()];
    const base = await a.onlineCount();
    await a.join([u, v]);
    await b.join([v, w]);
    assert.equal(await a.onlineCount(), base + 3, "v on two nodes counts once");
    await a.leave(u, new Date());
    assert.equal(await b.onlineCount(), base + 2);
    await a.leave(v, new Date());
    assert.equal(await a.onlineCount(), base + 2, "v is still held by b");
    await sleep(600);
    assert.equal(await a.onlineCount(), base, "b stopped renewing its lease: v and w expired");
  });

  test(`${name}: ping answers true while the server is up`, async () => {
    assert.equal(await (await node(id(), 1000)).ping(), true);
  });
}
