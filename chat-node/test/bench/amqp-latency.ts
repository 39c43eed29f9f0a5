// Raw broker baseline: publish-confirm latency to a quorum queue (sequential and 50 concurrent).
import { connect } from "amqplib";
import { startRabbitMQ } from "@vibetalk/testkit";
const rabbit = await startRabbitMQ();
try {
  const conn = await connect(rabbit.url);
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue("q", { durable: true, arguments: { "x-queue-type": "quorum" } });
  const pub = () =>
    new Promise<void>((res, rej) =>
      ch.sendToQueue("q", Buffer.from("x".repeat(200)), { persistent: true }, (e: unknown) =>
        e ? rej(e) : res(),
      ),
    );
  const seq: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    await pub();
    seq.push(performance.now() - t);
  }
  seq.sort((a, b) => a - b);
  const conc: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      for (let i = 0; i < 40; i++) {
        const t = performance.now();
        await pub();
        conc.push(performance.now() - t);
      }
    }),
  );
  const total = performance.now() - t0;
  conc.sort((a, b) => a - b);
  const p = (a: number[], q: number) => a[Math.floor(q * (a.length - 1))]?.toFixed(1);
  console.log(
    `sequential confirm p50 ${p(seq, 0.5)} ms p99 ${p(seq, 0.99)} ms; 50 concurrent: p50 ${p(conc, 0.5)} p99 ${p(conc, 0.99)} ms, ${Math.round(2000 / (total / 1000))} msg/s`,
  );
  await conn.close();
} finally {
  await rabbit.stop();
}
