// Idle memory of the chat-node image beside the way the tests ran chat-node before the images
// (`node --import tsx chat-node/src/main.ts`), both against the same Redis, RabbitMQ and FerretDB, both
// owning the 64 partitions in turn, measured after the same idle time. Run: npm run bench -- --idle-rss
// (--write records it in bench/RESULTS.md). The image runs with podman on the host's network.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  freePort,
  ManagedProcess,
  repoRoot,
  run,
  runCommand,
  startMongo,
  startRabbitMQ,
  startRedis,
  tempDir,
  waitUntil,
} from "@vibetalk/testkit";
import { table } from "./report.js";

const IMAGE = "localhost/vibetalk/chat-node:0.1.0";
const PODMAN = ["--runtime", "runc"];
const ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=20000:20000"];

function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
  return kb / 1024;
}

export interface IdleRss {
  idleSeconds: number;
  tsxMiB: number[];
  imageMiB: number[];
}

async function ready(url: string, what: string, proc?: ManagedProcess): Promise<void> {
  await waitUntil(what, proc, async () => (await fetch(`${url}/readyz`)).ok, 90_000, 200);
}

export async function measureIdleRss(rounds = 3, idleSeconds = 20): Promise<IdleRss> {
  const [redis, rabbit, mongo] = await Promise.all([startRedis(), startRabbitMQ(), startMongo()]);
  const dir = await tempDir("idle-rss");
  const env = {
    HOST: "127.0.0.1",
    OPS_HOST: "127.0.0.1",
    REDIS_URL: redis.url,
    RABBITMQ_URL: rabbit.url,
    MONGODB_URL: mongo.url,
    JWT_SECRET: randomBytes(24).toString("hex"),
    OWNED_PARTITIONS: "0-63",
    LOG_LEVEL: "warn",
  };
  const out: IdleRss = { idleSeconds, tsxMiB: [], imageMiB: [] };
  try {
    for (let r = 0; r < rounds; r++) {
      const [port, opsPort] = [await freePort(), await freePort()];
      const tsx = new ManagedProcess({
        name: "chat-node-tsx",
        command: process.execPath,
        args: ["--import", "tsx", join(repoRoot, "chat-node/src/main.ts")],
        cwd: repoRoot,
        logFile: join(dir.path, `tsx-${r}.log`),
        env: { ...process.env, ...env, PORT: String(port), OPS_PORT: String(opsPort), NODE_ID: `tsx-${r}` },
      });
      // readiness is on the operations port (docs/chat-node.md)
      await ready(`http://127.0.0.1:${opsPort}`, "chat-node (tsx)", tsx);
      await sleep(idleSeconds * 1000);
      out.tsxMiB.push(rssMiB(tsx.pid!));
      await tsx.stop(20_000);

      const [imagePort, imageOpsPort] = [await freePort(), await freePort()];
      const name = `vibetalk-idle-rss-${randomBytes(3).toString("hex")}`;
      const envArgs = Object.entries({
        ...env,
        PORT: String(imagePort),
        OPS_PORT: String(imageOpsPort),
        NODE_ID: `image-${r}`,
      }).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
      await run("podman", [
        ...PODMAN,
        "run",
        "-d",
        "--rm",
        "--read-only",
        "--network",
        "host",
        ...ULIMITS,
        "--name",
        name,
        ...envArgs,
        IMAGE,
      ]);
      try {
        await ready(`http://127.0.0.1:${imageOpsPort}`, "chat-node (image)");
        await sleep(idleSeconds * 1000);
        const pid = Number((await run("podman", ["inspect", "--format", "{{.State.Pid}}", name])).trim());
        out.imageMiB.push(rssMiB(pid));
      } finally {
        await runCommand("podman", [...PODMAN, "stop", "-t", "20", name], { timeoutMs: 60_000 });
      }
    }
    return out;
  } finally {
    await Promise.all([redis.stop(), rabbit.stop(), mongo.stop()]);
    await dir.remove();
  }
}

const fmt = (xs: number[]): string => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)} MiB`;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export function idleRssSection(r: IdleRss): string {
  return [
    `Idle RSS after ${r.idleSeconds} s with the 64 partitions owned and no client, ${r.tsxMiB.length} rounds (command:`,
    "`npm run bench -- --idle-rss --write`).",
    "",
    table(
      ["chat-node", "idle RSS (min–max)", "median"],
      [
        [
          "compiled image (`node dist/main.js`, production dependencies)",
          fmt(r.imageMiB),
          `${median(r.imageMiB).toFixed(0)} MiB`,
        ],
        [
          "baseline: `node --import tsx src/main.ts` (how it ran before the images)",
          fmt(r.tsxMiB),
          `${median(r.tsxMiB).toFixed(0)} MiB`,
        ],
        ["ratio image / tsx (medians)", "", (median(r.imageMiB) / median(r.tsxMiB)).toFixed(2)],
      ],
    ),
  ].join("\n");
}
