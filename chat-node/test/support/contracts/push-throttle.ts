// The PushThrottle contract (docs/chat-node.md#ports-and-fakes), run against RedisPushThrottle on
// Redis (integration) and MemoryPushThrottle (unit). `node()` gives one chat-node's adapter; all
// share one server, so one key is taken once across the nodes.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import type { PushThrottle } from "../../../src/ports.js";

const id = () => randomBytes(8).toString("hex");

export function pushThrottleContract(name: string, node: () => PushThrottle | Promise<PushThrottle>): void {
  test(`${name}: a key is taken once per interval across nodes, and again after it lapses`, async () => {
    const [a, b] = [await node(), await node()];
    const k = id();
    const taken = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).acquire(k, 300)));
    assert.equal(taken.filter(Boolean).length, 1);
    assert.equal(await a.acquire(id(), 300), true, "other keys are free");
    await sleep(400);
    assert.equal(await b.acquire(k, 300), true);
  });
}
