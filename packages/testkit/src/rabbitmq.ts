import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./ports.js";
import { ManagedProcess, run, tcpOpen, tempDir, waitUntil } from "./process.js";
import {
  checkVersion,
  chooseVersion,
  ServerContainer,
  serversImage,
  waitForContainer,
} from "./servers-image.js";
import { systemBinary } from "./tools.js";

/**
 * "4": RabbitMQ 4.0 (what users get from the bitnami chart) from the Debian 13 image (scripts/server-images),
 * in podman. "3.10": Debian 12's own RabbitMQ 3.10, natively.
 */
export type RabbitMQVersion = "4" | "3.10";
export const RABBITMQ_VERSIONS = ["4", "3.10"] as const satisfies readonly RabbitMQVersion[];

export interface RabbitMQOptions {
  /** Enables the management plugin (HTTP API with queue statistics). */
  management?: boolean;
  /** The address to listen on (default 127.0.0.1); the node's bridge gateway makes it reachable from pods. */
  host?: string;
  /** Default: $VIBETALK_RABBITMQ, else "4". */
  version?: RabbitMQVersion;
}

export interface RabbitMQService {
  /** The server's own version (from its AMQP handshake), e.g. 4.0.5 or 3.10.8. */
  version: string;
  /** The podman image it runs from; undefined when it runs natively (Debian 12's package). */
  image?: string;
  url: string;
  port: number;
  nodeName: string;
  /** http://guest:guest@HOST:PORT when the management plugin is on. */
  managementUrl?: string;
  /** Runs rabbitmqctl against this node and returns its output. */
  ctl(args: string[]): Promise<string>;
  /** Stops the node (data kept) and starts it again on the same ports. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  logTail(): string;
}

/** The server's version from its AMQP Connection.Start (server-properties "version"); undefined until it answers. */
export function amqpServerVersion(
  port: number,
  host = "127.0.0.1",
  timeoutMs = 2_000,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    let buf = Buffer.alloc(0);
    const done = (v: string | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once("connect", () => socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1])));
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 7) return;
      const end = 7 + buf.readUInt32BE(3) + 1; // frame header, payload, frame-end
      if (buf.length < end) return;
      // The table entry: short string "version", type S, long string value.
      const key = Buffer.from("\x07versionS", "latin1");
      const at = buf.indexOf(key);
      if (at < 0 || at + key.length + 4 > end) return done(undefined);
      const len = buf.readUInt32BE(at + key.length);
      done(buf.subarray(at + key.length + 4, at + key.length + 4 + len).toString("utf8"));
    });
    socket.once("error", () => done(undefined));
    socket.once("close", () => done(undefined));
  });
}

interface Node {
  dir: string;
  host: string;
  port: number;
  mgmtPort: number;
  epmdPort: number;
  nodeName: string;
  management: boolean;
  /** RABBITMQ_* and HOME for the server and rabbitmqctl. */
  env: Record<string, string>;
  logFile: string;
}

/** The node's folder: cookie, config, plugins, mnesia and log folders; its ports and name. */
async function prepareNode(dir: string, host: string, management: boolean): Promise<Node> {
  const [port, distPort, epmdPort, mgmtPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const nodeName = `vt${randomBytes(4).toString("hex")}@localhost`;
  const home = join(dir, "home");
  await mkdir(home);
  await mkdir(join(dir, "mnesia"));
  await mkdir(join(dir, "log"));
  await writeFile(join(home, ".erlang.cookie"), randomBytes(16).toString("hex"));
  await chmod(join(home, ".erlang.cookie"), 0o400);
  const conf = [
    "loopback_users = none",
    `listeners.tcp.default = ${host}:${port}`,
    ...(management ? [`management.tcp.port = ${mgmtPort}`, `management.tcp.ip = ${host}`] : []),
  ];
  await writeFile(join(dir, "rabbitmq.conf"), conf.join("\n") + "\n");
  await writeFile(join(dir, "enabled_plugins"), management ? "[rabbitmq_management].\n" : "[].\n");
  const env = {
    HOME: home,
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_MNESIA_BASE: join(dir, "mnesia"),
    RABBITMQ_LOG_BASE: join(dir, "log"),
    RABBITMQ_FEATURE_FLAGS_FILE: join(dir, "feature_flags"),
    RABBITMQ_CONFIG_FILE: join(dir, "rabbitmq.conf"),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, "enabled_plugins"),
    RABBITMQ_PID_FILE: join(dir, "rabbit.pid"),
    RABBITMQ_LOGS: "-",
  };
  return { dir, host, port, mgmtPort, epmdPort, nodeName, management, env, logFile: join(dir, "server.log") };
}

/** What differs between a native node and a container: how it starts, stops, runs rabbitmqctl, logs. */
interface Runner {
  image?: string;
  launch(): Promise<string>;
  halt(): Promise<void>;
  ctl(args: string[]): Promise<string>;
  logTail(): string;
  /** After the last halt. */
  cleanUp(): Promise<void>;
}

/**
 * Starts a private RabbitMQ node: its own node name, ports, mnesia/log folders, cookie and epmd port, all inside
 * one temp folder. Version "4" runs from the Debian 13 image in podman (host network, the folder bind-mounted),
 * "3.10" runs Debian 12's package natively, as root without Debian's wrapper (which switches to the rabbitmq
 * user). restart() keeps the data either way.
 */
export async function startRabbitMQ(options: RabbitMQOptions = {}): Promise<RabbitMQService> {
  const wanted = chooseVersion("VIBETALK_RABBITMQ", options.version, RABBITMQ_VERSIONS);
  const image = wanted === "4" ? (await serversImage()).image : undefined;
  const dir = await tempDir("rabbitmq");
  let runner: Runner | undefined;
  try {
    const node = await prepareNode(dir.path, options.host ?? "127.0.0.1", options.management ?? false);
    runner = image ? containerRunner(node, image) : nativeRunner(node);
    const r = runner;
    const version = await r.launch();
    checkVersion("RabbitMQ", wanted, version);
    return {
      version,
      ...(r.image ? { image: r.image } : {}),
      url: `amqp://guest:guest@${node.host}:${node.port}`,
      port: node.port,
      nodeName: node.nodeName,
      ...(node.management ? { managementUrl: `http://guest:guest@${node.host}:${node.mgmtPort}` } : {}),
      ctl: (args) => r.ctl(args),
      logTail: () => r.logTail(),
      restart: async () => {
        await r.halt();
        await r.launch();
      },
      stop: async () => {
        await r.halt();
        await r.cleanUp();
        await dir.remove();
      },
    };
  } catch (err) {
    if (runner) await runner.halt().catch(() => undefined);
    await runner?.cleanUp().catch(() => undefined);
    await dir.remove();
    throw err;
  }
}

type Wait = (what: string, probe: () => Promise<boolean>, timeoutMs: number) => Promise<void>;

/** Waits for AMQP (the handshake tells the version) and the management listener; returns the version. */
async function waitReady(node: Node, wait: Wait): Promise<string> {
  let version: string | undefined;
  await wait(
    "rabbitmq",
    async () => (version = await amqpServerVersion(node.port, node.host)) !== undefined,
    90_000,
  );
  if (node.management) await wait("rabbitmq management", () => tcpOpen(node.mgmtPort, node.host), 30_000);
  return version as string;
}

function containerRunner(node: Node, image: string): Runner {
  const ctlBinary = "/usr/lib/rabbitmq/bin/rabbitmqctl";
  const container = new ServerContainer(
    {
      service: "rabbitmq",
      dir: node.dir,
      command: ["/usr/lib/rabbitmq/bin/rabbitmq-server"],
      env: node.env,
      logFile: node.logFile,
    },
    image,
  );
  return {
    image,
    launch: async () => {
      await container.start();
      return waitReady(node, (what, probe, timeoutMs) =>
        waitForContainer(what, container, probe, timeoutMs, 200),
      );
    },
    // The server script turns SIGTERM into a clean stop of the node; a node with quorum queues takes a few seconds.
    halt: () => container.stop(30),
    ctl: (args) => container.exec([ctlBinary, "-n", node.nodeName, ...args], node.env),
    logTail: () => container.logTail(),
    cleanUp: async () => undefined,
  };
}

function nativeRunner(node: Node): Runner {
  const server = systemBinary(["/usr/lib/rabbitmq/bin/rabbitmq-server"], "rabbitmq-server");
  const ctlBinary = systemBinary(["/usr/lib/rabbitmq/bin/rabbitmqctl"], "rabbitmq-server");
  const env: NodeJS.ProcessEnv = { ...process.env, ...node.env };
  let proc: ManagedProcess | undefined;
  const beamPid = async (): Promise<number | undefined> => {
    try {
      const pid = Number((await readFile(node.env.RABBITMQ_PID_FILE as string, "utf8")).trim());
      return Number.isFinite(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    launch: async () => {
      const p = new ManagedProcess({
        name: "rabbitmq",
        command: server,
        args: [],
        env,
        logFile: node.logFile,
      });
      proc = p;
      return waitReady(node, (what, probe, timeoutMs) => waitUntil(what, p, probe, timeoutMs, 200));
    },
    halt: async () => {
      if (!proc) return;
      // Signalling the script's group is not enough: beam.smp may outlive it, so signal beam itself too.
      const pid = await beamPid();
      proc.signal("SIGTERM");
      if (pid) {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          /* gone */
        }
        for (let i = 0; i < 100; i++) {
          try {
            process.kill(pid, 0);
          } catch {
            break;
          }
          await sleep(100);
          if (i === 80) process.kill(pid, "SIGKILL");
        }
      }
      await proc.stop(5_000);
    },
    ctl: (args) => run(ctlBinary, ["-n", node.nodeName, ...args], { env, timeoutMs: 60_000 }),
    logTail: () => proc?.logTail() ?? "(not started)",
    cleanUp: async () => {
      await run("/usr/bin/epmd", ["-port", String(node.epmdPort), "-kill"], { env }).catch(() => undefined);
    },
  };
}
