import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import amqp from "amqplib";
import { Redis } from "ioredis";
import mongoose from "mongoose";
import {
  run,
  startControlPlane,
  startMongo,
  startRabbitMQ,
  startRedis,
  toolPath,
  type ControlPlane,
  type MongoService,
  type RabbitMQService,
  type RedisService,
} from "../../src/index.js";

describe("redis", () => {
  let redis: RedisService;
  before(async () => (redis = await startRedis()));
  after(() => redis?.stop());

  test("ioredis round trip with a TTL", async () => {
    const client = new Redis(redis.url);
    try {
      await client.set("presence:u1", "online", "EX", 25);
      assert.equal(await client.get("presence:u1"), "online");
      const ttl = await client.ttl("presence:u1");
      assert.ok(ttl > 20 && ttl <= 25, `ttl ${ttl}`);
    } finally {
      client.disconnect();
    }
  });
});

describe("rabbitmq", () => {
  let rabbit: RabbitMQService;
  before(async () => (rabbit = await startRabbitMQ({ management: true })));
  after(() => rabbit?.stop());

  test("quorum queue: publish persistent with confirms, consume, ack", async () => {
    const conn = await amqp.connect(rabbit.url);
    try {
      const ch = await conn.createConfirmChannel();
      await ch.assertQueue("smoke.q", { durable: true, arguments: { "x-queue-type": "quorum" } });
      const n = 200;
      for (let i = 0; i < n; i++) ch.sendToQueue("smoke.q", Buffer.from(String(i)), { persistent: true });
      await ch.waitForConfirms();
      const got: number[] = [];
      await new Promise<void>((resolve) => {
        void ch.consume("smoke.q", (msg) => {
          if (!msg) return;
          got.push(Number(msg.content.toString()));
          ch.ack(msg);
          if (got.length === n) resolve();
        });
      });
      assert.deepEqual(
        got,
        Array.from({ length: n }, (_, i) => i),
        "quorum queue keeps order",
      );
      const queues = await rabbit.ctl(["list_queues", "name", "type", "--quiet"]);
      assert.match(queues, /smoke\.q\s+quorum/);
    } finally {
      await conn.close();
    }
  });

  test("management API reports the queue", async () => {
    assert.ok(rabbit.managementUrl);
    const url = new URL("/api/queues", rabbit.managementUrl);
    const res = await fetch(`${url.origin}${url.pathname}`, {
      headers: { Authorization: `Basic ${Buffer.from("guest:guest").toString("base64")}` },
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { name: string }[];
    assert.ok(body.some((q) => q.name === "smoke.q"));
  });
});

describe("mongodb protocol (FerretDB on PostgreSQL)", () => {
  let mongo: MongoService;
  before(async () => (mongo = await startMongo()));
  after(() => mongo?.stop());

  test("mongoose create, unique index, query by range", async () => {
    const conn = await mongoose.createConnection(mongo.url).asPromise();
    try {
      const Message = conn.model(
        "SmokeMessage",
        new mongoose.Schema({ _id: String, channelId: String, seq: Number, body: String }),
      );
      await Message.collection.createIndex({ channelId: 1, seq: 1 }, { unique: true });
      await Message.insertMany(
        Array.from({ length: 30 }, (_, i) => ({
          _id: `c1:${String(i + 1).padStart(12, "0")}`,
          channelId: "c1",
          seq: i + 1,
          body: `m${i + 1}`,
        })),
      );
      await assert.rejects(
        Message.create({ _id: "c1:dup", channelId: "c1", seq: 5, body: "again" }),
        (err: { code?: number }) => err.code === 11000,
        "the unique (channelId, seq) index refuses a second seq 5",
      );
      const page = await Message.find({ _id: { $gt: "c1:000000000010", $lte: "c1:000000000020" } })
        .sort({ _id: 1 })
        .lean();
      assert.deepEqual(
        page.map((m) => m.seq),
        [11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
      );
    } finally {
      await conn.close();
    }
  });
});

describe("kubernetes control plane", () => {
  let cp: ControlPlane;
  before(async () => (cp = await startControlPlane({ nodes: 1 })));
  after(() => cp?.stop());

  test("client-node creates a namespace and a Deployment; kwok runs its pod", async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    await core.createNamespace({ body: { metadata: { name: "smoke" } } });
    await apps.createNamespacedDeployment({
      namespace: "smoke",
      body: {
        metadata: { name: "web" },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: "web" } },
          template: {
            metadata: { labels: { app: "web" } },
            spec: { containers: [{ name: "web", image: "example/web:1" }] },
          },
        },
      },
    });
    let running = 0;
    for (let i = 0; i < 120 && running < 2; i++) {
      const pods = await core.listNamespacedPod({ namespace: "smoke", labelSelector: "app=web" });
      running = pods.items.filter((p) => p.status?.phase === "Running").length;
      if (running < 2) await sleep(250);
    }
    assert.equal(running, 2, `pods running: ${running}\n${cp.logTail("kwok")}`);
    const dep = await apps.readNamespacedDeployment({ name: "web", namespace: "smoke" });
    for (let i = 0; i < 40 && dep.status?.readyReplicas !== 2; i++) {
      await sleep(250);
      Object.assign(dep, await apps.readNamespacedDeployment({ name: "web", namespace: "smoke" }));
    }
    assert.equal(dep.status?.readyReplicas, 2);
  });

  test("kubectl talks to the API server", async () => {
    const out = await cp.kubectl(["version", "-o", "json"]);
    const v = JSON.parse(out) as {
      serverVersion: { gitVersion: string };
      clientVersion: { gitVersion: string };
    };
    assert.match(v.serverVersion.gitVersion, /^v1\.\d+\.\d+$/);
    assert.equal(v.clientVersion.gitVersion, v.serverVersion.gitVersion);
  });
});

test("helm version runs", async () => {
  const out = await run(toolPath("helm"), ["version", "--short"]);
  assert.match(out, /^v3\.\d+\.\d+/);
});
