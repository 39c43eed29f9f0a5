import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { runCommand, ServiceStartError, tailOf } from "./process.js";
import { cacheDir, repoRoot } from "./tools.js";

/**
 * The newer backing servers (RabbitMQ 4.0, Redis 8.0, what users get from the bitnami charts) run from a
 * Debian 13 image that scripts/server-images builds with mmdebstrap and imports into podman; Debian 12's own
 * packages (RabbitMQ 3.10, Redis 7.0) run natively. This module finds that image and runs one server per
 * container: host network, the instance's folder bind-mounted at the same path, the server's output appended
 * to a log file in that folder.
 */

const PODMAN = "/usr/bin/podman";
/** Every server container carries this label; a later run removes those whose owner process is gone. */
const LABEL = "vibetalk.testkit=server";

export interface ServersImage {
  /** The podman image reference (localhost/vibetalk/trixie-servers:<recipe hash>). */
  image: string;
  /** Debian package versions inside the image, as scripts/server-images recorded them. */
  packages: Record<string, string>;
  built?: string;
}

export function serversImageFile(): string {
  return join(cacheDir(), "server-images", "trixie-servers.json");
}

let imageChecked: Promise<ServersImage> | undefined;

/** The image scripts/server-images built; throws saying how to build it when it is missing. */
export function serversImage(): Promise<ServersImage> {
  imageChecked ??= (async () => {
    const howTo = `run ${join(repoRoot, "scripts/server-images")} (it builds the Debian 13 image of rabbitmq-server and redis-server)`;
    if (!existsSync(PODMAN)) throw new Error(`${PODMAN} is missing: run scripts/setup (it installs podman)`);
    const file = serversImageFile();
    if (!existsSync(file)) throw new Error(`${file} is missing: ${howTo}`);
    const meta = JSON.parse(readFileSync(file, "utf8")) as ServersImage;
    const r = await runCommand(PODMAN, ["image", "exists", meta.image]);
    if (r.code !== 0) throw new Error(`podman has no image ${meta.image}: ${howTo}`);
    return meta;
  })();
  // A failed check is not remembered: the image may be built while a long program runs.
  imageChecked.catch(() => (imageChecked = undefined));
  return imageChecked;
}

/** Hard limits of this process (podman's defaults are above them and refused here). */
function hardLimit(name: string, fallback: number): number {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith(name));
    const hard = line?.slice(26).trim().split(/\s+/)[1];
    if (!hard || hard === "unlimited") return fallback;
    return Math.min(Number(hard), fallback);
  } catch {
    return fallback;
  }
}

/** "pid:starttime" of a process (the start time tells a reused pid apart), undefined when it is gone. */
function processIdentity(pid: number | "self"): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22 (start time); fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const realPid = pid === "self" ? process.pid : pid;
    return `${realPid}:${fields[19]}`;
  } catch {
    return undefined;
  }
}

const owner = processIdentity("self") ?? `${process.pid}:0`;
const live = new Set<ServerContainer>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Containers outlive the process that started them: remove ours when it exits (also on SIGINT/SIGTERM once
  // process.ts's handlers, which turn them into an exit, are installed). What a killed run leaves is removed
  // at the next start (removeStale).
  process.on("exit", () => {
    const names = [...live].map((c) => c.name);
    if (names.length === 0) return;
    spawnSync(PODMAN, ["rm", "--force", "--ignore", "--time", "0", ...names], { stdio: "ignore" });
    if (!process.env.VIBETALK_KEEP_TMP) for (const c of live) rmSync(c.dir, { recursive: true, force: true });
  });
}

interface ContainerInfo {
  Names: string[];
  Labels: Record<string, string> | null;
}

/**
 * Removes server containers (and their folders) whose owner process is gone: what runs that were killed
 * (SIGKILL, a crash of node) left. Asked at every start (one `podman ps`, ~0.1 s); containers of processes
 * that still run, this one's or another test run's, are left alone.
 */
async function removeStale(): Promise<void> {
  const r = await runCommand(PODMAN, ["ps", "--all", "--filter", `label=${LABEL}`, "--format", "json"]);
  let listed: ContainerInfo[];
  try {
    listed = r.code === 0 ? (JSON.parse(r.stdout || "[]") as ContainerInfo[]) : [];
  } catch {
    return; // a clean-up, never a reason for the start to fail
  }
  const stale = listed.filter((c) => {
    const o = c.Labels?.["vibetalk.owner"] ?? "";
    return o !== owner && processIdentity(Number(o.split(":")[0])) !== o;
  });
  if (stale.length === 0) return;
  await runCommand(PODMAN, ["rm", "--force", "--ignore", "--time", "0", ...stale.flatMap((c) => c.Names)]);
  for (const c of stale) {
    const dir = c.Labels?.["vibetalk.dir"];
    // Only the harness's own temp folders.
    if (dir?.startsWith(join(tmpdir(), "vibetalk-")) && !process.env.VIBETALK_KEEP_TMP)
      rmSync(dir, { recursive: true, force: true });
  }
}

export interface ContainerSpec {
  /** "rabbitmq", "redis": messages and the container name (vibetalk-<service>-<random>). */
  service: string;
  /** The instance's host folder, bind-mounted at the same path; removed by the caller. */
  dir: string;
  /** The server's command line inside the container. */
  command: string[];
  env: Record<string, string>;
  /** A file inside dir: the server's stdout and stderr are appended to it. */
  logFile: string;
}

/** One server in a podman container (runc, host network); start() may be called again after stop()/kill(). */
export class ServerContainer {
  readonly name: string;
  private podmanOutput = "";

  constructor(
    readonly spec: ContainerSpec,
    readonly image: string,
  ) {
    this.name = `vibetalk-${spec.service}-${randomBytes(4).toString("hex")}`;
  }

  get dir(): string {
    return this.spec.dir;
  }

  logTail(lines = 40): string {
    const tail = tailOf(this.spec.logFile, lines);
    return this.podmanOutput ? `${tail}\n(podman: ${this.podmanOutput.trim()})` : tail;
  }

  /** podman run -d; throws ServiceStartError with podman's own message when the container does not start. */
  async start(): Promise<void> {
    installExitHook();
    await removeStale();
    // At or below this process's hard limits: podman's defaults are refused here (setrlimit: not permitted),
    // and so was nproc 65536 under a hard limit of 96363 (the VM's own ceiling); 20000 of each is plenty.
    const limitFiles = hardLimit("Max open files", 20_000);
    const limitProcs = hardLimit("Max processes", 20_000);
    const args = [
      "--runtime",
      "runc", // crun fails on this kind of VM (cgroups in hybrid mode)
      "run",
      "--detach",
      "--rm",
      "--pull",
      "never",
      "--network",
      "host",
      "--ulimit",
      `nofile=${limitFiles}:${limitFiles}`,
      "--ulimit",
      `nproc=${limitProcs}:${limitProcs}`,
      "--name",
      this.name,
      "--label",
      LABEL,
      "--label",
      `vibetalk.owner=${owner}`,
      "--label",
      `vibetalk.dir=${this.spec.dir}`,
      "--volume",
      `${this.spec.dir}:${this.spec.dir}`,
      ...Object.entries({ ...this.spec.env, VIBETALK_LOG: this.spec.logFile }).flatMap(([k, v]) => [
        "--env",
        `${k}=${v}`,
      ]),
      this.image,
      "/bin/sh",
      "-c",
      'exec "$@" >>"$VIBETALK_LOG" 2>&1',
      "sh", // $0; "$@" is the server's command line
      ...this.spec.command,
    ];
    live.add(this);
    const r = await runCommand(PODMAN, args, { timeoutMs: 60_000 });
    if (r.code !== 0) {
      live.delete(this);
      this.podmanOutput = r.stderr || r.stdout;
      throw new ServiceStartError(this.spec.service, `podman run exited ${r.code}`, this.logTail());
    }
  }

  /** True while the container runs (it is removed when the server exits). */
  async running(): Promise<boolean> {
    const r = await runCommand(PODMAN, ["container", "inspect", "--format", "{{.State.Running}}", this.name]);
    return r.code === 0 && r.stdout.trim() === "true";
  }

  /** Runs a command in the container; throws with its output when it exits non-zero. */
  async exec(command: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<string> {
    const r = await runCommand(
      PODMAN,
      ["exec", ...Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]), this.name, ...command],
      { timeoutMs },
    );
    if (r.code !== 0)
      throw new Error(`${command.join(" ")} (in ${this.name}) exited ${r.code}\n${r.stderr || r.stdout}`);
    return r.stdout;
  }

  /** SIGTERM to the server, SIGKILL after graceSeconds; the container is gone when this resolves. */
  async stop(graceSeconds = 10): Promise<void> {
    await runCommand(PODMAN, ["stop", "--ignore", "--time", String(graceSeconds), this.name], {
      timeoutMs: (graceSeconds + 30) * 1000,
    });
    await this.remove();
  }

  /** SIGKILL (a crash); the container is gone when this resolves. */
  async kill(): Promise<void> {
    await runCommand(PODMAN, ["kill", "--signal", "KILL", this.name]);
    await this.remove();
  }

  private async remove(): Promise<void> {
    await runCommand(PODMAN, ["rm", "--force", "--ignore", "--time", "0", this.name]);
    live.delete(this);
  }
}

/**
 * waitUntil for a container: polls `probe` until it returns true; throws ServiceStartError with the log tail
 * when the container exits or on timeout. Whether the container still runs is asked once a second (each ask
 * is a podman process).
 */
export async function waitForContainer(
  service: string,
  container: ServerContainer,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let nextCheck = Date.now() + 1000;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      /* not ready yet */
    }
    if (Date.now() >= nextCheck) {
      nextCheck = Date.now() + 1000;
      if (!(await container.running())) {
        throw new ServiceStartError(service, `container ${container.name} exited`, container.logTail());
      }
    }
    if (Date.now() > deadline) {
      throw new ServiceStartError(service, `not ready after ${timeoutMs} ms`, container.logTail());
    }
    await sleep(intervalMs);
  }
}

/**
 * The version a start function runs: the caller's choice, else the environment variable (so a whole run can
 * be repeated on the older versions: VIBETALK_RABBITMQ=3.10, VIBETALK_REDIS=7), else the first of `allowed`
 * (what users run).
 */
export function chooseVersion<V extends string>(
  envName: string,
  requested: V | undefined,
  allowed: readonly [V, ...V[]],
): V {
  if (requested !== undefined) {
    if (!allowed.includes(requested))
      throw new Error(`unknown version ${requested}: one of ${allowed.join(", ")}`);
    return requested;
  }
  const fromEnv = process.env[envName];
  if (fromEnv === undefined || fromEnv === "") return allowed[0];
  const match = allowed.find((v) => v === fromEnv);
  if (!match)
    throw new Error(`${envName}=${fromEnv} is not a version the harness runs: one of ${allowed.join(", ")}`);
  return match;
}

/** Throws when the server's own version is not the one asked for (e.g. a host whose package is newer). */
export function checkVersion(service: string, wanted: string, actual: string): void {
  if (actual === wanted || actual.startsWith(`${wanted}.`)) return;
  throw new Error(`${service} ${wanted} was asked for, but the server reports version ${actual}`);
}
