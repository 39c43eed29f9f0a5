import { connect } from "node:net";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { ManagedProcess, tempDir, waitUntil } from "./process.js";
import {
  checkVersion,
  chooseVersion,
  ServerContainer,
  serversImage,
  waitForContainer,
} from "./servers-image.js";
import { systemBinary } from "./tools.js";

/**
 * "8": Redis 8.0 (what users get from the bitnami chart) from the Debian 13 image (scripts/server-images), in
 * podman. "7": Debian 12's own Redis 7.0, natively.
 */
export type RedisVersion = "8" | "7";
export const REDIS_VERSIONS = ["8", "7"] as const satisfies readonly RedisVersion[];

export interface RedisOptions {
  /** The address to listen on (default 127.0.0.1); the node's bridge gateway makes it reachable from pods. */
  host?: string;
  /** Default: $VIBETALK_REDIS, else "8". */
  version?: RedisVersion;
}

export interface RedisService {
  /** The server's own version (INFO server), e.g. 8.0.2 or 7.0.15. */
  version: string;
  /** The podman image it runs from; undefined when it runs natively (Debian 12's package). */
  image?: string;
  url: string;
  port: number;
  /** Stops the server; its folder is removed. */
  stop(): Promise<void>;
  /** SIGKILLs the server and starts it again on the same port (data is not persisted). */
  restart(): Promise<void>;
  logTail(): string;
}

/** redis_version from INFO server; undefined until the server answers (also while it is loading). */
export function redisServerVersion(
  port: number,
  host = "127.0.0.1",
  timeoutMs = 2_000,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    let text = "";
    const done = (v: string | undefined): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    s.once("connect", () => s.write("INFO server\r\n"));
    s.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (!text.startsWith("$")) return done(undefined); // -LOADING, -ERR
      const m = /redis_version:([^\r\n]+)\r\n/.exec(text);
      if (m?.[1]) done(m[1]);
    });
    s.once("error", () => done(undefined));
    s.once("close", () => done(undefined));
  });
}

/**
 * Starts a private redis-server on a free port, without persistence: version "8" from the Debian 13 image in
 * podman (host network), "7" Debian 12's package natively.
 */
export async function startRedis(options: RedisOptions = {}): Promise<RedisService> {
  const wanted = chooseVersion("VIBETALK_REDIS", options.version, REDIS_VERSIONS);
  const image = wanted === "8" ? (await serversImage()).image : undefined;
  const host = options.host ?? "127.0.0.1";
  const dir = await tempDir("redis");
  const port = await freePort();
  const logFile = join(dir.path, "redis.log");
  const args = [
    "--port",
    String(port),
    "--bind",
    host,
    // Bound explicitly to one private address, with nothing but tests on it.
    "--protected-mode",
    "no",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir.path,
  ];
  let version: string | undefined;
  const ready = async (): Promise<boolean> => (version = await redisServerVersion(port, host)) !== undefined;
  let launch: () => Promise<void>;
  let kill: () => Promise<void>;
  let halt: () => Promise<void>;
  let logTail: () => string;
  if (image) {
    const c = new ServerContainer(
      { service: "redis", dir: dir.path, command: ["/usr/bin/redis-server", ...args], env: {}, logFile },
      image,
    );
    launch = async () => {
      await c.start();
      await waitForContainer("redis", c, ready, 20_000, 50);
    };
    kill = () => c.kill();
    halt = () => c.stop(5);
    logTail = () => c.logTail();
  } else {
    const binary = systemBinary(["/usr/bin/redis-server"], "redis-server");
    let proc: ManagedProcess | undefined;
    launch = async () => {
      const p = new ManagedProcess({ name: "redis", command: binary, args, logFile });
      proc = p;
      await waitUntil("redis", p, ready, 10_000, 50);
    };
    kill = async () => {
      proc?.killGroupNow();
      await proc?.waitExit(5_000);
    };
    halt = async () => proc?.stop();
    logTail = () => proc?.logTail() ?? "(not started)";
  }
  try {
    await launch();
    checkVersion("Redis", wanted, version as string);
  } catch (err) {
    await halt().catch(() => undefined);
    await dir.remove();
    throw err;
  }
  return {
    version: version as string,
    ...(image ? { image } : {}),
    url: `redis://${host}:${port}`,
    port,
    logTail,
    restart: async () => {
      await kill();
      await launch();
    },
    stop: async () => {
      await halt();
      await dir.remove();
    },
  };
}
