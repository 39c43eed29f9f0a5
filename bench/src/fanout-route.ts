// `npm run bench -- --fanout-route [--write]`: what one message costs RabbitMQ by each fan-out route, to
// choose LARGE_CHANNEL_MEMBERS (docs/chat-node.md, "Large channels"). The members route publishes with
// routing key + CC naming every member (each key bound to the node queue through a user exchange behind
// a fanout router, as chat-nodes declare it); the channel route publishes once with the channel id as
// routing key to a direct exchange the node queue is bound to. Same broker, same run, same consumer;
// the channel route is the baseline of each ratio.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import amqp from "amqplib";
import { repoRoot, startRabbitMQ } from "@vibetalk/testkit";
import { table, writeSection } from "./report.js";
import { ms, summarize } from "./stats.js";

const SIZES = [1, 10, 50, 100, 200, 500];
const MESSAGES = Number(process.env["BENCH_FANOUT_MESSAGES"] ?? 2000);
const WINDOW = 50;

interface RouteResult {
  perSecond: number;
  p50: number;
  p99: number;
  headerBytes: number;
}

export async function runFanoutRouteBench(argv: string[]): Promise<void> {
  console.log(`[bench] fan-out route: RabbitMQ from the server image, ${MESSAGES} messages per size…`);
  const rabbit = await startRabbitMQ();
  const conn = await amqp.connect(rabbit.url, { noDelay: true });
  try {
    const admin = await conn.createChannel();
    const tag = randomBytes(3).toString("hex");
    const [router, users, channels, queue] = [
      `b.users.${tag}`,
      `b.users.0.${tag}`,
      `b.channels.${tag}`,
      `b.node.${tag}`,
    ];
    await admin.assertExchange(router, "fanout", { durable: false, autoDelete: true });
    await admin.assertExchange(users, "direct", { durable: false, autoDelete: true });
    await admin.bindExchange(users, router, "");
    await admin.assertExchange(channels, "direct", { durable: false, autoDelete: true });
    await admin.assertQueue(queue, { durable: false, exclusive: true });
    await admin.bindQueue(queue, channels, "ch");
    const members = Array.from(
      { length: Math.max(...SIZES) },
      (_, i) => `user${String(i).padStart(20, "0")}`,
    );
    for (const m of members) await admin.bindQueue(queue, users, m);

    const pub = await conn.createConfirmChannel();
    const sub = await conn.createChannel();
    await sub.prefetch(500);
    let onMessage: ((n: number) => void) | null = null;
    await sub.consume(queue, (msg) => {
      if (!msg) return;
      sub.ack(msg);
      onMessage?.(Number(msg.content.toString()));
    });

    const run = async (send: (i: number) => void, headerBytes: number): Promise<RouteResult> => {
      const sentAt = new Map<number, number>();
      const lat: number[] = [];
      let got = 0;
      const done = new Promise<void>((resolve) => {
        onMessage = (i) => {
          lat.push(performance.now() - (sentAt.get(i) ?? 0));
          if (++got === MESSAGES) resolve();
        };
      });
      const t0 = performance.now();
      for (let i = 0; i < MESSAGES; i++) {
        sentAt.set(i, performance.now());
        send(i);
        if (i % WINDOW === WINDOW - 1) await pub.waitForConfirms();
      }
      await pub.waitForConfirms();
      await done;
      const s = summarize(lat);
      return { perSecond: MESSAGES / ((performance.now() - t0) / 1000), p50: s.p50, p99: s.p99, headerBytes };
    };

    // A warm-up round first (connection, JIT, the broker's first routing), not reported.
    await run((i) => pub.publish(channels, "ch", Buffer.from(String(i))), 0);
    const channel = await run((i) => pub.publish(channels, "ch", Buffer.from(String(i))), 0);
    console.log(`[bench] channel route: ${channel.perSecond.toFixed(0)} messages/s`);
    const rows: string[][] = [];
    rows.push([
      "channel route (baseline)",
      "1",
      channel.perSecond.toFixed(0),
      "1.00",
      ms(channel.p50),
      ms(channel.p99),
      "0",
    ]);
    for (const n of SIZES) {
      const [first, ...cc] = members.slice(0, n) as [string, ...string[]];
      const headerBytes = cc.reduce((b, k) => b + k.length + 5, 0);
      const r = await run(
        (i) => pub.publish(router, first, Buffer.from(String(i)), cc.length ? { headers: { CC: cc } } : {}),
        headerBytes,
      );
      console.log(`[bench] members route, ${n} recipients: ${r.perSecond.toFixed(0)} messages/s`);
      rows.push([
        "members route (routing key + CC)",
        String(n),
        r.perSecond.toFixed(0),
        (r.perSecond / channel.perSecond).toFixed(2),
        ms(r.p50),
        ms(r.p99),
        String(r.headerBytes),
      ]);
    }
    const body = [
      `Latest run: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, this machine (2 cores). Command:`,
      "",
      "```sh",
      "npm run bench -- --fanout-route --write",
      "```",
      "",
      `One RabbitMQ (the server image's 4.x), one node queue, ${MESSAGES} transient messages per row, confirms awaited every`,
      `${WINDOW}, one consumer acking, after a warm-up round. The members route names N members bound to the queue (one delivery per message`,
      "either way: RabbitMQ routes each key and delivers to the queue once); the channel route is one key.",
      "",
      table(
        [
          "route",
          "recipients named",
          "messages/s",
          "ratio to channel route",
          "publish→consume p50",
          "p99",
          "CC header bytes",
        ],
        rows,
      ),
    ].join("\n");
    console.log(body);
    if (argv.includes("--write")) {
      await writeSection(join(repoRoot, "bench/RESULTS.md"), {
        heading: "Fan-out route by member count",
        body,
      });
      console.log("[bench] wrote the fan-out route section of bench/RESULTS.md");
    }
  } finally {
    await conn.close().catch(() => undefined);
    await rabbit.stop();
  }
}
