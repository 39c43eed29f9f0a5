import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { createWriteStream, readFileSync, existsSync, type WriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** Every process the harness started and has not stopped yet; killed if the test process exits. */
const live = new Set<ManagedProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const p of live) p.killGroupNow();
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const onSignal = (): void => {
      // A program with a handler of its own (npm run up) stops gracefully; the exit hook above still runs.
      if (process.listenerCount(signal) > 1) return;
      for (const p of live) p.killGroupNow();
      process.exit(130);
    };
    process.on(signal, onSignal);
  }
}

export class ServiceStartError extends Error {
  constructor(service: string, reason: string, logTail: string) {
    super(`${service} failed to start: ${reason}\n--- last lines of its log ---\n${logTail}`);
    this.name = "ServiceStartError";
  }
}

export interface ManagedProcessOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logFile: string;
  /** Run as this uid/gid (e.g. PostgreSQL refuses to run as root). */
  uid?: number;
  gid?: number;
}

/** A child process in its own process group, its output in a log file, stopped with SIGTERM then SIGKILL. */
export class ManagedProcess {
  readonly child: ChildProcess;
  exited = false;
  exitCode: number | null = null;
  private readonly exitPromise: Promise<void>;
  private readonly log: WriteStream;

  constructor(readonly options: ManagedProcessOptions) {
    installExitHook();
    const log = createWriteStream(options.logFile, { flags: "a" });
    this.log = log;
    const spawnOptions: SpawnOptions = {
      env: options.env ?? process.env,
      cwd: options.cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    };
    if (options.uid !== undefined) spawnOptions.uid = options.uid;
    if (options.gid !== undefined) spawnOptions.gid = options.gid;
    this.child = spawn(options.command, options.args, spawnOptions);
    this.child.stdout?.pipe(log, { end: false });
    this.child.stderr?.pipe(log, { end: false });
    this.exitPromise = new Promise((resolve) => {
      this.child.once("exit", (code) => {
        this.exited = true;
        this.exitCode = code;
        live.delete(this);
        // Daemons the process left behind (epmd) may hold our pipes open: stop reading them.
        this.child.stdout?.destroy();
        this.child.stderr?.destroy();
        this.log.end();
        resolve();
      });
      this.child.once("error", (err) => {
        log.write(`spawn error: ${err.message}\n`);
        this.exited = true;
        live.delete(this);
        resolve();
      });
    });
    live.add(this);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  logTail(lines = 40): string {
    return tailOf(this.options.logFile, lines);
  }

  /** Sends a signal to the whole process group. */
  signal(sig: NodeJS.Signals): void {
    if (this.exited || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, sig);
    } catch {
      /* already gone */
    }
  }

  killGroupNow(): void {
    this.signal("SIGKILL");
  }

  async waitExit(timeoutMs: number): Promise<boolean> {
    if (this.exited) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([this.exitPromise.then(() => true), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, then SIGKILL after graceMs. Resolves once the process has exited. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.exited) return;
    this.signal("SIGTERM");
    if (!(await this.waitExit(graceMs))) {
      this.signal("SIGKILL");
      await this.waitExit(5_000);
    }
  }
}

export function tailOf(file: string, lines: number): string {
  if (!existsSync(file)) return "(no log file)";
  const text = readFileSync(file, "utf8");
  return text.split("\n").slice(-lines).join("\n");
}

/** Polls `probe` until it returns true; throws ServiceStartError with the log tail on timeout or exit. */
export async function waitUntil(
  service: string,
  proc: ManagedProcess | undefined,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc?.exited) {
      throw new ServiceStartError(service, `process exited with code ${proc.exitCode}`, proc.logTail());
    }
    try {
      if (await probe()) return;
    } catch {
      /* not ready yet */
    }
    if (Date.now() > deadline) {
      throw new ServiceStartError(service, `not ready after ${timeoutMs} ms`, proc?.logTail() ?? "");
    }
    await sleep(intervalMs);
  }
}

/** True when something accepts TCP connections on host:port. */
export function tcpOpen(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A fresh temporary folder; removed by the returned function unless VIBETALK_KEEP_TMP is set. */
export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `vibetalk-${prefix}-`));
  return {
    path,
    remove: async () => {
      if (process.env.VIBETALK_KEEP_TMP) return;
      await rm(path, { recursive: true, force: true });
    },
  };
}

export function runCommand(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}

/** runCommand that throws with the command's output when it exits non-zero. */
export async function run(
  command: string,
  args: string[],
  options: Parameters<typeof runCommand>[2] = {},
): Promise<string> {
  const r = await runCommand(command, args, options);
  if (r.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${r.code}\n${r.stderr || r.stdout}`);
  }
  return r.stdout;
}
