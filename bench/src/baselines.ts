import amqp from "amqplib";
import mongoose from "mongoose";
import { summarize, type Summary } from "./stats.js";

/**
 * The broker floor: persistent publishes with confirms to one quorum queue, consumed by another connection;
 * per-message publish→consume latency and throughput, what chat-node's message path can at best approach.
 * Pipelined (confirms awaited every 200) for throughput, and one at a time for the idle round trip. Both
 * connections with TCP_NODELAY, as chat-node's (without it, Nagle's algorithm adds ~40 ms stalls).
 */
export async function brokerFloor(
  url: string,
  messages: number,
): Promise<{ perSecond: number; roundTrip: Summary; idleRoundTrip: Summary }> {
  const pub = await amqp.connect(url, { noDelay: true });
  const sub = await amqp.connect(url, { noDelay: true });
  try {
    const pch = await pub.createConfirmChannel();
    const sch = await sub.createChannel();
    await pch.assertQueue("bench.floor", { durable: true, arguments: { "x-queue-type": "quorum" } });
    await sch.prefetch(500);
    const sentAt = new Map<number, number>();
    const latencies: number[] = [];
    let consumed: (() => void) | null = null;
    const done = new Promise<void>((resolve) => {
      void sch.consume("bench.floor", (msg) => {
        if (!msg) return;
        const i = Number(msg.content.toString());
        latencies.push(performance.now() - (sentAt.get(i) ?? 0));
        sch.ack(msg);
        consumed?.();
        if (latencies.length === messages) resolve();
      });
    });
    const t0 = performance.now();
    for (let i = 0; i < messages; i++) {
      sentAt.set(i, performance.now());
      pch.sendToQueue("bench.floor", Buffer.from(String(i)), { persistent: true });
      if (i % 200 === 199) await pch.waitForConfirms();
    }
    await pch.waitForConfirms();
    await done;
    const seconds = (performance.now() - t0) / 1000;
    const idle: number[] = [];
    for (let i = messages; i < messages + 200; i++) {
      const here = new Promise<void>((resolve) => (consumed = resolve));
      const t = performance.now();
      sentAt.set(i, t);
      pch.sendToQueue("bench.floor", Buffer.from(String(i)), { persistent: true });
      await pch.waitForConfirms();
      await here;
      idle.push(performance.now() - t);
    }
    await pch.deleteQueue("bench.floor");
    return { perSecond: messages / seconds, roundTrip: summarize(latencies), idleRoundTrip: summarize(idle) };
  } finally {
    await pub.close();
    await sub.close();
  }
}

/**
 * The store ceiling on FerretDB: sequential insertOne of message-sized documents into a collection already
 * holding `existing` documents (FerretDB's costs grow with the collection), plus one 50-document page read.
 */
export async function storeCeiling(
  mongoUrl: string,
  existing: number,
  inserts: number,
): Promise<{ insertsPerSecond: number; insert: Summary; pageMs: number }> {
  const conn = await mongoose.createConnection(mongoUrl).asPromise();
  try {
    const col = conn.db!.collection<{ _id: string; channelId: string; seq: number; body: string }>(
      "bench_ceiling",
    );
    await col.deleteMany({});
    const doc = (i: number) => ({
      _id: `c${i % 50}:${String(i).padStart(12, "0")}`,
      channelId: `c${i % 50}`,
      seq: i,
      body: "x".repeat(80),
    });
    for (let i = 0; i < existing; i += 1000) {
      await col.insertMany(Array.from({ length: Math.min(1000, existing - i) }, (_, j) => doc(i + j)));
    }
    const latencies: number[] = [];
    const t0 = performance.now();
    for (let i = existing; i < existing + inserts; i++) {
      const t = performance.now();
      await col.insertOne(doc(i));
      latencies.push(performance.now() - t);
    }
    const seconds = (performance.now() - t0) / 1000;
    const p = performance.now();
    await col
      .find({ _id: { $gt: "c1:", $lt: "c1:~" } })
      .sort({ _id: 1 })
      .limit(50)
      .toArray();
    const pageMs = performance.now() - p;
    await col.drop();
    return { insertsPerSecond: inserts / seconds, insert: summarize(latencies), pageMs };
  } finally {
    await conn.close();
  }
}
