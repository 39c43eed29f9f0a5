// Short two-node measurement: send→deliver latency and messages per second.
// Usage: node --import tsx chat-node/test/bench/two-node.ts [seconds=10] [pairs=50] [ratePerSender=20]
// Two chat-node child processes (A owns every partition, B none) on real Redis, RabbitMQ and
// FerretDB; senders connect to A, receivers to B, one direct channel per pair.
import { randomUUID } from "node:crypto";
import type { Message } from "@vibetalk/protocol";
import { ChildNode } from "../support/child-node.js";
import { sleep, startServices, TestUser, type TestSocket } from "../support/harness.js";

const seconds = Number(process.argv[2] ?? 10);
const pairs = Number(process.argv[3] ?? 50);
const rate = Number(process.argv[4] ?? 20);

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const services = await startServices();
const limits = {
  LIMIT_SEND_RATE: String(Math.max(20, rate * 2)),
  LIMIT_SEND_BURST: String(Math.max(40, rate * 2)),
};
const A = await ChildNode.start(services, {
  OWNED_PARTITIONS: "all",
  NODE_ID: "bench-a",
  LOG_LEVEL: "warn",
  ...limits,
});
const B = await ChildNode.start(services, {
  OWNED_PARTITIONS: "none",
  NODE_ID: "bench-b",
  LOG_LEVEL: "warn",
  ...limits,
});
try {
  const senders: TestSocket[] = [];
  const receivers: TestSocket[] = [];
  const channels: string[] = [];
  for (let i = 0; i < pairs; i++) {
    const s = await TestUser.register(A, "bs");
    const r = await TestUser.register(B, "br");
    channels.push((await s.direct(A, r)).id);
    senders.push(await s.connect(A));
    receivers.push(await r.connect(B));
  }
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let acked = 0;
  let failed = 0;
  const ackLat: number[] = [];
  for (const r of receivers) {
    r.socket.on("message", (m: Message) => {
      const t = sentAt.get(m.clientMsgId);
      if (t !== undefined) {
        latencies.push(performance.now() - t);
        sentAt.delete(m.clientMsgId);
      }
    });
  }
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    senders.map(async (s, i) => {
      const ch = channels[i] as string;
      const interval = 1000 / rate;
      let next = performance.now() + Math.random() * interval;
      while (next < end) {
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait);
        next += interval;
        const id = randomUUID();
        const t0 = performance.now();
        sentAt.set(id, t0);
        void s.send(ch, "x".repeat(100), id).then(
          (r) => {
            if (r.ok) {
              acked++;
              ackLat.push(performance.now() - t0);
            } else failed++;
          },
          () => failed++,
        );
      }
    }),
  );
  await sleep(3000);
  const elapsed = (performance.now() - start - 3000) / 1000;
  latencies.sort((a, b) => a - b);
  ackLat.sort((a, b) => a - b);
  const result = {
    seconds,
    pairs,
    offeredPerSecond: pairs * rate,
    acked,
    failed,
    delivered: latencies.length,
    deliveredPerSecond: Math.round(latencies.length / elapsed),
    ackMs: { p50: +pct(ackLat, 50).toFixed(1), p99: +pct(ackLat, 99).toFixed(1) },
    deliverMs: {
      p50: +pct(latencies, 50).toFixed(1),
      p90: +pct(latencies, 90).toFixed(1),
      p99: +pct(latencies, 99).toFixed(1),
      max: +(latencies.at(-1) ?? NaN).toFixed(1),
    },
  };
  console.log(JSON.stringify(result));
  // Server-side view: histograms from node A (owner + senders' gateway) and B (receivers' gateway).
  for (const [name, node] of [
    ["A", A],
    ["B", B],
  ] as const) {
    const text = await (await fetch(`${node.opsUrl}/metrics`)).text();
    for (const h of [
      "vibetalk_send_ack_seconds",
      "vibetalk_send_deliver_seconds",
      "vibetalk_batch_seconds",
      "vibetalk_batch_store_seconds",
      "vibetalk_batch_messages",
    ]) {
      const buckets = [...text.matchAll(new RegExp(`^${h}_bucket\\{le="([^"]+)"[^}]*\\} (\\d+)`, "gm"))].map(
        (m) => [m[1] as string, Number(m[2])] as const,
      );
      const count = buckets.at(-1)?.[1] ?? 0;
      if (!count) continue;
      const q = (f: number) => buckets.find(([, c]) => c >= f * count)?.[0];
      console.log(`${name} ${h}: n=${count} p50<=${q(0.5)} p99<=${q(0.99)}`);
    }
  }
  for (const s of [...senders, ...receivers]) s.close();
} finally {
  await Promise.allSettled([A.stop(), B.stop()]);
  await services.stop();
}
