import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./ports.js";
import { ManagedProcess, run, tcpOpen, tempDir, waitUntil } from "./process.js";
import { systemBinary } from "./tools.js";

export interface RabbitMQOptions {
  /** Enables the management plugin (HTTP API with queue statistics). */
  management?: boolean;
  /** The address to listen on (default 127.0.0.1); the node's bridge gateway makes it reachable from pods. */
  host?: string;
}

export interface RabbitMQService {
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

/**
 * Starts a private RabbitMQ node as root without Debian's wrapper (which switches to the rabbitmq user):
 * its own node name, ports, mnesia/log folders, cookie and epmd port, all inside one temp folder.
 */
export async function startRabbitMQ(options: RabbitMQOptions = {}): Promise<RabbitMQService> {
  const server = systemBinary(["/usr/lib/rabbitmq/bin/rabbitmq-server"], "rabbitmq-server");
  const ctlBinary = systemBinary(["/usr/lib/rabbitmq/bin/rabbitmqctl"], "rabbitmq-server");
  const dir = await tempDir("rabbitmq");
  const host = options.host ?? "127.0.0.1";
  const [port, distPort, epmdPort, mgmtPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const nodeName = `vt${randomBytes(4).toString("hex")}@localhost`;
  const home = join(dir.path, "home");
  await mkdir(home);
  await mkdir(join(dir.path, "mnesia"));
  await mkdir(join(dir.path, "log"));
  await writeFile(join(home, ".erlang.cookie"), randomBytes(16).toString("hex"));
  await chmod(join(home, ".erlang.cookie"), 0o400);
  const conf = [
    "loopback_users = none",
    `listeners.tcp.default = ${host}:${port}`,
    ...(options.management ? [`management.tcp.port = ${mgmtPort}`, `management.tcp.ip = ${host}`] : []),
  ];
  await writeFile(join(dir.path, "rabbitmq.conf"), conf.join("\n") + "\n");
  await writeFile(
    join(dir.path, "enabled_plugins"),
    options.management ? "[rabbitmq_management].\n" : "[].\n",
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_MNESIA_BASE: join(dir.path, "mnesia"),
    RABBITMQ_LOG_BASE: join(dir.path, "log"),
    RABBITMQ_FEATURE_FLAGS_FILE: join(dir.path, "feature_flags"),
    RABBITMQ_CONFIG_FILE: join(dir.path, "rabbitmq.conf"),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir.path, "enabled_plugins"),
    RABBITMQ_PID_FILE: join(dir.path, "rabbit.pid"),
    RABBITMQ_LOGS: "-",
  };
  let proc: ManagedProcess;
  const beamPid = async (): Promise<number | undefined> => {
    try {
      const pid = Number((await readFile(env.RABBITMQ_PID_FILE as string, "utf8")).trim());
      return Number.isFinite(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const launch = async (): Promise<void> => {
    proc = new ManagedProcess({
      name: "rabbitmq",
      command: server,
      args: [],
      env,
      logFile: join(dir.path, "server.log"),
    });
    await waitUntil("rabbitmq", proc, () => tcpOpen(port, host), 60_000, 200);
    if (options.management)
      await waitUntil("rabbitmq management", proc, () => tcpOpen(mgmtPort, host), 30_000, 200);
  };
  const halt = async (): Promise<void> => {
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
  };
  await launch();
  const ctl = (args: string[]): Promise<string> =>
    run(ctlBinary, ["-n", nodeName, ...args], { env, timeoutMs: 60_000 });
  return {
    url: `amqp://guest:guest@${host}:${port}`,
    port,
    nodeName,
    ...(options.management ? { managementUrl: `http://guest:guest@${host}:${mgmtPort}` } : {}),
    ctl,
    logTail: () => proc.logTail(),
    restart: async () => {
      await halt();
      await launch();
    },
    stop: async () => {
      await halt();
      await run("/usr/bin/epmd", ["-port", String(epmdPort), "-kill"], { env }).catch(() => undefined);
      await dir.remove();
    },
  };
}
