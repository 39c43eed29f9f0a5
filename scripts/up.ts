// The local VibeTalk: real Redis, RabbitMQ and FerretDB, chat-node processes sharing the partitions, and nginx
// in front of them. Run through `npm run up` (scripts/up runs scripts/setup first). Ctrl-C stops everything.
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ManagedProcess,
  freePort,
  repoRoot,
  startMongo,
  startNginx,
  startRabbitMQ,
  startRedis,
  waitUntil,
} from "@vibetalk/testkit";

const NODES = Number(process.env.VIBETALK_NODES ?? 2);
const PORT = Number(process.env.VIBETALK_PORT ?? 8080);
const PARTITIONS = 64;

function log(message: string): void {
  console.log(`[up ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

/** Splits partitions 0..P-1 into `nodes` contiguous ranges, written as chat-node's OWNED_PARTITIONS. */
function ranges(partitions: number, nodes: number): string[] {
  return Array.from({ length: nodes }, (_, i) => {
    const from = Math.floor((i * partitions) / nodes);
    const to = Math.floor(((i + 1) * partitions) / nodes) - 1;
    return `${from}-${to}`;
  });
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url);
  return res.ok;
}

async function main(): Promise<void> {
  const started = Date.now();
  const stops: (() => Promise<void>)[] = [];
  const shutdown = async (): Promise<void> => {
    log("stopping…");
    for (const stop of stops.reverse()) await stop().catch((e: unknown) => log(`stop failed: ${String(e)}`));
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown());
  process.once("SIGTERM", () => void shutdown());

  log("starting Redis, RabbitMQ (with management) and FerretDB on PostgreSQL…");
  const [redis, rabbit, mongo] = await Promise.all([
    startRedis(),
    startRabbitMQ({ management: true }),
    startMongo(),
  ]);
  stops.push(redis.stop, rabbit.stop, mongo.stop);
  log(`services up: ${redis.url} ${rabbit.url} ${mongo.url}`);

  const logDir = await mkdtemp(join(tmpdir(), "vibetalk-up-"));
  const jwtSecret = process.env.JWT_SECRET ?? randomBytes(24).toString("hex");
  const addresses: string[] = [];
  const owned = ranges(PARTITIONS, NODES);
  for (let i = 0; i < NODES; i++) {
    const port = await freePort();
    const node = new ManagedProcess({
      name: `chat-node-${i}`,
      command: process.execPath,
      args: ["--import", "tsx", join(repoRoot, "chat-node/src/main.ts")],
      cwd: repoRoot,
      logFile: join(logDir, `chat-node-${i}.log`),
      env: {
        ...process.env,
        PORT: String(port),
        HOST: "127.0.0.1",
        NODE_ID: `chat-node-${i}`,
        REDIS_URL: redis.url,
        RABBITMQ_URL: rabbit.url,
        MONGODB_URL: mongo.url,
        JWT_SECRET: jwtSecret,
        PARTITIONS: String(PARTITIONS),
        OWNED_PARTITIONS: owned[i] ?? "",
      },
    });
    stops.push(() => node.stop(30_000));
    await waitUntil(`chat-node-${i}`, node, () => httpOk(`http://127.0.0.1:${port}/readyz`), 60_000, 200);
    addresses.push(`127.0.0.1:${port}`);
    log(
      `chat-node-${i} ready on 127.0.0.1:${port}, partitions ${owned[i]}, log ${join(logDir, `chat-node-${i}.log`)}`,
    );
  }
  const nginx = await startNginx({ port: PORT, upstreams: addresses });
  stops.push(nginx.stop);
  log(`RabbitMQ management: ${rabbit.managementUrl ?? "off"}`);
  log(
    `ready in ${((Date.now() - started) / 1000).toFixed(1)} s — open ${nginx.url} in a browser (Ctrl-C stops)`,
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
