import { connect } from "node:net";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { ManagedProcess, tempDir, waitUntil } from "./process.js";
import { systemBinary } from "./tools.js";

export interface RedisService {
  url: string;
  port: number;
  /** Stops the server; its folder is removed. */
  stop(): Promise<void>;
  /** SIGKILLs the server and starts it again on the same port (data is not persisted). */
  restart(): Promise<void>;
  logTail(): string;
}

function ping(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    s.once("connect", () => s.write("PING\r\n"));
    s.once("data", (d: Buffer) => {
      s.destroy();
      resolve(d.toString().startsWith("+PONG"));
    });
    s.once("error", () => resolve(false));
  });
}

/** Starts a private redis-server on a free loopback port, without persistence. */
/**
 * @param options.host the address to listen on (default 127.0.0.1); the node's bridge gateway makes it
 * reachable from pods.
 */
export async function startRedis(options: { host?: string } = {}): Promise<RedisService> {
  const host = options.host ?? "127.0.0.1";
  const binary = systemBinary(["/usr/bin/redis-server"], "redis-server");
  const dir = await tempDir("redis");
  const port = await freePort();
  let proc: ManagedProcess;
  const launch = async (): Promise<void> => {
    proc = new ManagedProcess({
      name: "redis",
      command: binary,
      args: [
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
      ],
      logFile: join(dir.path, "redis.log"),
    });
    await waitUntil("redis", proc, () => ping(port, host), 10_000, 50);
  };
  await launch();
  return {
    url: `redis://${host}:${port}`,
    port,
    logTail: () => proc.logTail(),
    restart: async () => {
      proc.killGroupNow();
      await proc.waitExit(5_000);
      await launch();
    },
    stop: async () => {
      await proc.stop();
      await dir.remove();
    },
  };
}
