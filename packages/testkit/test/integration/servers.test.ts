// Both versions of each backing server start from the harness and behave as the versions users run:
// RabbitMQ 4.0 (bitnami chart; Debian 13's package in podman) and 3.10 (Debian 12's, native), Redis 8.0 and 7.0.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import amqp, { type Channel, type ConfirmChannel, type ChannelModel, type ConsumeMessage } from "amqplib";
import { Redis } from "ioredis";
import { startRabbitMQ, type RabbitMQService, type RabbitMQVersion } from "../../src/rabbitmq.js";
import { run, tempDir } from "../../src/process.js";
import { startRedis, type RedisService, type RedisVersion } from "../../src/redis.js";

const srcDir = join(dirname(fileURLToPath(import.meta.url)), "../../src");

const quorum = { durable: true, arguments: { "x-queue-type": "quorum" } };

async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
  const t = Date.now();
  const value = await f();
  console.log(`[servers] ${what}: ${((Date.now() - t) / 1000).toFixed(2)} s`);
  return value;
}

/** The consumer callback's messages, one at a time; next() gives undefined when none comes within ms. */
function deliveries(): {
  next(ms: number): Promise<ConsumeMessage | undefined>;
  onMessage(m: ConsumeMessage | null): void;
} {
  const queue: ConsumeMessage[] = [];
  let waiting: ((m: ConsumeMessage) => void) | undefined;
  return {
    onMessage: (m) => {
      if (!m) return;
      if (waiting) waiting(m);
      else queue.push(m);
    },
    next: (ms) => {
      const m = queue.shift();
      if (m) return Promise.resolve(m);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting = undefined;
          resolve(undefined);
        }, ms);
        waiting = (got) => {
          clearTimeout(timer);
          waiting = undefined;
          resolve(got);
        };
      });
    },
  };
}

const rabbitVersions: { version: RabbitMQVersion; pattern: RegExp; dropsAfter20: boolean }[] = [
  { version: "4", pattern: /^4\.0\.\d+$/, dropsAfter20: true },
  { version: "3.10", pattern: /^3\.10\.\d+$/, dropsAfter20: false },
];

for (const { version, pattern, dropsAfter20 } of rabbitVersions) {
  describe(`rabbitmq ${version}`, () => {
    let rabbit: RabbitMQService;
    let conn: ChannelModel;
    let ch: ConfirmChannel;
    before(async () => {
      rabbit = await timed(`rabbitmq ${version} start`, () => startRabbitMQ({ version }));
      conn = await amqp.connect(rabbit.url);
      ch = await conn.createConfirmChannel();
    });
    after(async () => {
      await conn?.close().catch(() => undefined);
      if (rabbit) await timed(`rabbitmq ${version} stop`, () => rabbit.stop());
    });

    test(`reports its version (${pattern.source})`, async () => {
      assert.match(rabbit.version, pattern);
      assert.equal((await rabbit.ctl(["version"])).trim(), rabbit.version, "rabbitmqctl agrees");
      assert.equal(rabbit.image !== undefined, version === "4", "4.x runs from the image, 3.10 natively");
      console.log(
        `[servers] rabbitmq ${version}: ${rabbit.version} (${rabbit.image ?? "Debian 12 package"})`,
      );
    });

    test(
      dropsAfter20
        ? "quorum queue without a dead-letter target drops a message after 20 redeliveries"
        : "quorum queue without a dead-letter target redelivers a message past 20 requeues",
      async () => {
        const q = `delivery-limit.${version}`;
        await ch.assertQueue(q, quorum);
        ch.sendToQueue(q, Buffer.from("poison"), { persistent: true });
        await ch.waitForConfirms();
        const consumer: Channel = await conn.createChannel();
        await consumer.prefetch(1);
        const d = deliveries();
        const { consumerTag } = await consumer.consume(q, d.onMessage);
        const counts: number[] = [];
        for (let i = 0; i < 25; i++) {
          // A 22nd delivery would come at once (nothing else is queued): 1.5 s without one means none.
          const m = await d.next(i >= 21 ? 1_500 : 10_000);
          if (!m) break;
          counts.push(Number(m.properties.headers?.["x-delivery-count"] ?? 0));
          if (i === 24) await consumer.cancel(consumerTag);
          consumer.nack(m, false, true);
        }
        await sleep(300);
        const left = await ch.get(q, { noAck: true });
        await consumer.close();
        console.log(
          `[servers] rabbitmq ${version}: ${counts.length} deliveries, then ${left ? "still queued" : "gone"}`,
        );
        if (dropsAfter20) {
          assert.equal(counts.length, 21, "the first delivery and 20 redeliveries");
          assert.equal(counts.at(-1), 20, "x-delivery-count of the last");
          assert.equal(left, false, "dropped after the 21st requeue");
        } else {
          assert.equal(counts.length, 25, "no delivery limit");
          assert.ok(left, "still in the queue after 25 requeues");
          assert.equal(left.content.toString(), "poison");
        }
      },
    );

    test(
      dropsAfter20
        ? "a message held by consumers that go away (channel closed, unacked) is dropped after 21 of them"
        : "a message held by consumers that go away (channel closed, unacked) outlives 25 of them",
      async () => {
        const q = `consumer-gone.${version}`;
        await ch.assertQueue(q, quorum);
        ch.sendToQueue(q, Buffer.from("held"), { persistent: true });
        await ch.waitForConfirms();
        let deliveredTimes = 0;
        for (let i = 0; i < 25; i++) {
          const consumer = await conn.createChannel();
          const d = deliveries();
          await consumer.consume(q, d.onMessage);
          const m = await d.next(i >= 21 ? 1_500 : 10_000);
          await consumer.close(); // unacked: back to the queue
          if (!m) break;
          deliveredTimes++;
        }
        await sleep(300);
        const left = await ch.get(q, { noAck: true });
        console.log(
          `[servers] rabbitmq ${version}: held by ${deliveredTimes} closing consumers, then ${left ? "still queued" : "gone"}`,
        );
        if (dropsAfter20) {
          assert.equal(deliveredTimes, 21);
          assert.equal(left, false, "a closing consumer's return counts as a redelivery too");
        } else {
          assert.equal(deliveredTimes, 25);
          assert.ok(left, "still in the queue");
        }
      },
    );

    test("publisher confirms: persistent messages to a quorum queue are acked, a full queue nacks", async () => {
      const q = `confirms.${version}`;
      await ch.assertQueue(q, quorum);
      const n = 200;
      const acks = await Promise.all(
        Array.from(
          { length: n },
          (_, i) =>
            new Promise<boolean>((resolve) =>
              ch.sendToQueue(q, Buffer.from(String(i)), { persistent: true }, (err) => resolve(!err)),
            ),
        ),
      );
      assert.equal(acks.filter(Boolean).length, n, "every publish acked");
      assert.equal((await ch.checkQueue(q)).messageCount, n);

      const full = `confirms-full.${version}`;
      await ch.assertQueue(full, {
        durable: true,
        arguments: { "x-queue-type": "quorum", "x-max-length": 1, "x-overflow": "reject-publish" },
      });
      const outcomes: string[] = [];
      for (let i = 0; i < 5; i++) {
        outcomes.push(
          await new Promise<string>((resolve) =>
            ch.sendToQueue(full, Buffer.from(String(i)), { persistent: true }, (err) =>
              resolve(err ? "nack" : "ack"),
            ),
          ),
        );
      }
      assert.equal(outcomes[0], "ack");
      assert.ok(outcomes.includes("nack"), `a full queue nacks: ${outcomes.join(",")}`);
    });

    test("single active consumer: one consumer gets everything, the next takes over on cancel", async () => {
      const q = `sac.${version}`;
      await ch.assertQueue(q, {
        ...quorum,
        arguments: { ...quorum.arguments, "x-single-active-consumer": true },
      });
      const a = await conn.createChannel();
      const b = await conn.createChannel();
      const got = { a: [] as string[], b: [] as string[] };
      const tagA = await a.consume(q, (m) => m && (got.a.push(m.content.toString()), a.ack(m)));
      await b.consume(q, (m) => m && (got.b.push(m.content.toString()), b.ack(m)));
      for (let i = 0; i < 10; i++) ch.sendToQueue(q, Buffer.from(`m${i}`), { persistent: true });
      await ch.waitForConfirms();
      for (let i = 0; i < 100 && got.a.length < 10; i++) await sleep(50);
      assert.equal(got.a.length, 10, "the first consumer is the active one");
      assert.equal(got.b.length, 0, "the second waits");
      await a.cancel(tagA.consumerTag);
      for (let i = 10; i < 15; i++) ch.sendToQueue(q, Buffer.from(`m${i}`), { persistent: true });
      await ch.waitForConfirms();
      for (let i = 0; i < 100 && got.b.length < 5; i++) await sleep(50);
      assert.deepEqual(got.b, ["m10", "m11", "m12", "m13", "m14"], "the second took over, in order");
      await a.close();
      await b.close();
    });

    test("restart keeps durable queues and persistent messages; rabbitmqctl sees them", async () => {
      const q = `restart.${version}`;
      await ch.assertQueue(q, quorum);
      for (let i = 0; i < 5; i++) ch.sendToQueue(q, Buffer.from(String(i)), { persistent: true });
      await ch.waitForConfirms();
      await conn.close().catch(() => undefined);
      await timed(`rabbitmq ${version} restart`, () => rabbit.restart());
      conn = await amqp.connect(rabbit.url);
      ch = await conn.createConfirmChannel();
      // A quorum queue elects its leader again after the restart.
      let count = -1;
      for (let i = 0; i < 50 && count !== 5; i++) {
        count = (await ch.checkQueue(q)).messageCount;
        if (count !== 5) await sleep(200);
      }
      assert.equal(count, 5);
      // (list_queues' message counts of quorum queues lag by seconds: the type is what is asserted.)
      assert.match(await rabbit.ctl(["list_queues", "name", "type", "--quiet"]), /restart\.\S+\s+quorum/);
    });
  });
}

const redisVersions: { version: RedisVersion; pattern: RegExp; hashFieldTtl: boolean }[] = [
  { version: "8", pattern: /^8\.0\.\d+$/, hashFieldTtl: true },
  { version: "7", pattern: /^7\.0\.\d+$/, hashFieldTtl: false },
];

for (const { version, pattern, hashFieldTtl } of redisVersions) {
  describe(`redis ${version}`, () => {
    let redis: RedisService;
    before(async () => (redis = await timed(`redis ${version} start`, () => startRedis({ version }))));
    after(async () => {
      if (redis) await timed(`redis ${version} stop`, () => redis.stop());
    });

    test(`reports its version (${pattern.source})`, async () => {
      assert.match(redis.version, pattern);
      assert.equal(redis.image !== undefined, version === "8", "8.x runs from the image, 7.0 natively");
      const client = new Redis(redis.url);
      try {
        assert.match(
          await client.info("server"),
          new RegExp(`redis_version:${redis.version.replace(/\./g, "\\.")}`),
        );
      } finally {
        client.disconnect();
      }
      console.log(`[servers] redis ${version}: ${redis.version} (${redis.image ?? "Debian 12 package"})`);
    });

    test(
      hashFieldTtl ? "has hash field TTLs (HEXPIRE, 7.4+)" : "has no hash field TTLs (HEXPIRE is 7.4+)",
      async () => {
        const client = new Redis(redis.url);
        try {
          await client.hset("h", "f", "v");
          const hexpire = client.call("HEXPIRE", "h", "60", "FIELDS", "1", "f");
          if (hashFieldTtl) assert.deepEqual(await hexpire, [1]);
          else await assert.rejects(hexpire, /unknown command/i);
        } finally {
          client.disconnect();
        }
      },
    );

    test("restart (SIGKILL) comes back on the same port without the data", async () => {
      const client = new Redis(redis.url, { maxRetriesPerRequest: null });
      client.on("error", () => undefined); // refused while the server is down; the commands retry
      try {
        await client.set("k", "v", "EX", 30);
        assert.equal(await client.get("k"), "v");
        await timed(`redis ${version} restart`, () => redis.restart());
        assert.equal(await client.get("k"), null, "not persisted");
        await client.set("k", "again");
        assert.equal(await client.get("k"), "again");
      } finally {
        client.disconnect();
      }
    });
  });
}

describe("server containers outlive no run", () => {
  interface Info {
    Names: string[];
    Labels: Record<string, string>;
  }
  const ours = async (pid: number): Promise<Info[]> =>
    (
      JSON.parse(
        await run("podman", ["ps", "--all", "--filter", "label=vibetalk.testkit=server", "--format", "json"]),
      ) as Info[]
    ).filter((c) => c.Labels["vibetalk.owner"]?.startsWith(`${pid}:`));

  /** A program that starts Redis 8 and, told on stdin, exits without stop(); or is SIGKILLed. */
  async function child(): Promise<{ pid: number; child: ChildProcess; dir: string }> {
    const dir = await tempDir("servers-child");
    after(() => dir.remove());
    const file = join(dir.path, "child.mts");
    await writeFile(
      file,
      [
        `import { startRedis } from ${JSON.stringify(join(srcDir, "redis.ts"))};`,
        `await startRedis({ version: "8" });`,
        `console.log("up");`,
        `process.stdin.once("data", () => process.exit(0));`,
      ].join("\n"),
    );
    const c = spawn(process.execPath, ["--import", "tsx", file], { stdio: ["pipe", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      c.stdout.on("data", (d: Buffer) => d.toString().includes("up") && resolve());
      c.once("exit", (code) => reject(new Error(`child exited ${code}`)));
    });
    const pid = c.pid as number;
    const running = await ours(pid);
    assert.equal(running.length, 1, "the child's Redis runs");
    const serverDir = running[0]?.Labels["vibetalk.dir"] as string;
    assert.ok(existsSync(serverDir), serverDir);
    return { pid, child: c, dir: serverDir };
  }
  const exited = (c: ChildProcess): Promise<unknown> =>
    c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once("exit", r));

  test("a program that exits without stop() takes its containers and folders with it", async () => {
    const { pid, child: c, dir } = await child();
    c.stdin?.end("exit\n");
    await exited(c);
    assert.deepEqual(await ours(pid), []);
    assert.equal(existsSync(dir), false, "its folder too");
  });

  test("a SIGKILLed run's containers and folders are removed by the next start", async () => {
    const { pid, child: c, dir } = await child();
    c.kill("SIGKILL");
    await exited(c);
    assert.equal((await ours(pid)).length, 1, "nothing removed it yet");
    const redis = await startRedis({ version: "8" });
    await redis.stop();
    assert.deepEqual(await ours(pid), [], "removed at the next start");
    assert.equal(existsSync(dir), false, "its folder too");
  });
});
