// The port contracts on the real adapters and servers (docs/chat-node.md#ports-and-fakes): MongoStore
// on FerretDB, RabbitBroker on RabbitMQ 4, RedisPresence, RedisMembershipVersions and RedisPushThrottle on Redis 8, from @vibetalk/testkit. The same
// suites run on the in-memory fakes in test/unit/fakes.test.ts. A server that cannot start fails
// the suite.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  startMongo,
  startRabbitMQ,
  startRedis,
  type MongoService,
  type RabbitMQService,
  type RedisService,
} from "@vibetalk/testkit";
import { Redis } from "ioredis";
import { MongoStore } from "../../src/adapters/mongo-store.js";
import { RabbitBroker } from "../../src/adapters/rabbit-broker.js";
import { RedisMembershipVersions } from "../../src/adapters/redis-membership-versions.js";
import { RedisPushThrottle } from "../../src/adapters/redis-push-throttle.js";
import { RedisPresence } from "../../src/adapters/redis-presence.js";
import { createLogger } from "../../src/logger.js";
import { brokerContract } from "../support/contracts/broker.js";
import { membershipVersionsContract } from "../support/contracts/membership-versions.js";
import { pushThrottleContract } from "../support/contracts/push-throttle.js";
import { presenceContract } from "../support/contracts/presence.js";
import { storeContract } from "../support/contracts/store.js";

let mongo: MongoService | undefined;
let redisServer: RedisService | undefined;
let rabbit: RabbitMQService | undefined;
let store: MongoStore | undefined;
let redis: Redis | undefined;

before(async () => {
  [mongo, redisServer, rabbit] = await Promise.all([startMongo(), startRedis(), startRabbitMQ()]);
  store = await MongoStore.connect(mongo.url);
  redis = new Redis(redisServer.url, { maxRetriesPerRequest: 2 });
});
after(async () => {
  await store?.close();
  redis?.disconnect();
  await Promise.all([mongo?.stop(), redisServer?.stop(), rabbit?.stop()]);
});

/** A server the suite's `before` started, or a clear failure naming it. */
function started<T>(what: string, v: T | undefined): T {
  if (v === undefined) throw new Error(`${what} did not start (see the before hook's error)`);
  return v;
}

storeContract("MongoStore on FerretDB", () => started("FerretDB", store));
presenceContract(
  "RedisPresence on Redis",
  (nodeId, ttlMs) => new RedisPresence(started("Redis", redis), nodeId, ttlMs),
);
/** Calls per Redis command since the server started (INFO commandstats). */
async function commandCalls(r: Redis): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of (await r.info("commandstats")).matchAll(/^cmdstat_(\w+):calls=(\d+)/gm))
    out.set(m[1]!, Number(m[2]));
  return out;
}

test("RedisPresence: renewing a node's lease costs two commands however many users it holds", async () => {
  const r = started("Redis", redis);
  const p = new RedisPresence(r, "renew-count", 30_000);
  const users = Array.from({ length: 2500 }, (_, i) => `renew-count-${i}`);
  assert.equal((await p.join(users)).length, 2500);
  const before = await commandCalls(r);
  for (let i = 0; i < 10; i++) assert.deepEqual(await p.renew(() => users), []);
  const after = await commandCalls(r);
  const delta = (c: string) => (after.get(c) ?? 0) - (before.get(c) ?? 0);
  assert.equal(delta("set"), 10, "one SET of the lease per renewal");
  assert.equal(delta("pexpire"), 10, "one PEXPIRE of the node's user set per renewal");
  for (const c of ["hset", "hgetall", "hdel", "mget", "sadd"])
    assert.equal(delta(c), 0, `no ${c} while renewing`);
  assert.equal((await p.get(users.slice(0, 3))).filter((s) => s.online).length, 3);
});

test("RedisPresence: a field written by a chat-node before node leases (a live-until time) still counts until that time", async () => {
  const r = started("Redis", redis);
  await r.hset("vt:presence:old-style", "old-node", String(Date.now() + 300));
  const p = new RedisPresence(r, "reader", 30_000);
  assert.equal((await p.get(["old-style"]))[0]?.online, true);
  await new Promise((res) => setTimeout(res, 350));
  assert.equal((await p.get(["old-style"]))[0]?.online, false);
});

membershipVersionsContract(
  "RedisMembershipVersions on Redis",
  () => new RedisMembershipVersions(started("Redis", redis)),
);

pushThrottleContract("RedisPushThrottle on Redis", () => new RedisPushThrottle(started("Redis", redis)));

const PARTITIONS = 32;
const FANOUT_MAX = 5;
const log = createLogger("error", "contracts");
brokerContract(
  "RabbitBroker on RabbitMQ",
  (nodeId) =>
    RabbitBroker.connect({
      url: started("RabbitMQ", rabbit).url,
      nodeId,
      partitions: PARTITIONS,
      userExchanges: 2,
      bindChannels: 2,
      nodeQueueExpiresMs: 60_000,
      nodePrefetch: 1000,
      fanoutMaxRecipients: FANOUT_MAX,
      publishTimeoutMs: 5000,
      log,
    }),
  { partitions: PARTITIONS, fanoutMaxRecipients: FANOUT_MAX, quietMs: 200 },
);
