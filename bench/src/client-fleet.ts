// The client side of the connection-scale benchmark: several child processes (fleet-worker.ts), each holding
// up to ~20,000 Socket.IO clients over loopback source addresses. Every process the benchmark starts for
// this goes through `withOpenFilesRaised`, a shell wrapper that raises the soft open-files limit to the hard
// one (`ulimit -n "$(ulimit -Hn)"`): an unprivileged process cannot go past the hard limit, and the report
// says what each process got (`openFilesLimit`, read from /proc/<pid>/limits).
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface FleetTarget {
  /** A Socket.IO server's http:// URL, or Centrifugo's ws:// URL (`/connection/websocket`). */
  url: string;
  count: number;
  /** Centrifugo's JSON protocol: connect, then subscribe to the client's own channel `u<i>` (default: Socket.IO). */
  centrifugo?: boolean;
  /** chat-node's JWT_SECRET: each client gets a session token of its own user (minted in the worker). */
  jwtSecret?: string;
}

export type FleetCommand =
  | {
      t: "connect";
      targets: FleetTarget[];
      addresses: string[];
      /** Handshakes in flight at once. */
      concurrency: number;
      timeoutMs: number;
    }
  | { t: "disconnect" };

export type FleetReport =
  | { t: "ready"; pid: number; nofile: { soft: string; hard: string } }
  | { t: "progress"; connected: number; errors: number; inFlight: number }
  | { t: "connected"; connected: number; errors: number; seconds: number; errorSamples: string[] }
  | { t: "disconnected"; dropped: number };

/** The soft and hard open-files limits of a process. */
export function openFilesLimit(pid: number | "self"): { soft: string; hard: string } {
  const line = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, "utf8"));
  return { soft: line?.[1] ?? "?", hard: line?.[2] ?? "?" };
}

/** `command args…` run through bash with the soft open-files limit raised to the hard limit (exec: same pid). */
export function withOpenFilesRaised(command: string, args: string[]): { command: string; args: string[] } {
  return { command: "bash", args: ["-c", 'ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', command, ...args] };
}

/** A TypeScript module of bench/src run as a child with an IPC channel and the open-files limit raised. */
export function forkRaised(module: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const file = join(fileURLToPath(new URL(".", import.meta.url)), module);
  const c = withOpenFilesRaised(process.execPath, ["--import", "tsx", file]);
  return spawn(c.command, c.args, { env, stdio: ["ignore", "inherit", "inherit", "ipc"] });
}

/** Waits for the first IPC message of a child that satisfies `pick`. */
export function nextMessage<M, T>(
  child: ChildProcess,
  pick: (m: M) => T | undefined,
  ms: number,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no answer from pid ${child.pid} in ${ms} ms`)), ms);
    const onMessage = (m: M) => {
      const v = pick(m);
      if (v !== undefined) done(null, v);
    };
    const onExit = (code: number | null) => done(new Error(`pid ${child.pid} exited (${code})`));
    const done = (err: Error | null, v?: T) => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      if (err) reject(err);
      else resolve(v as T);
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

export interface FleetProcess {
  child: ChildProcess;
  pid: number;
  nofile: { soft: string; hard: string };
  /** Latest progress. */
  connected: number;
  errors: number;
}

export interface ConnectResult {
  connected: number;
  errors: number;
  /** First handshake started → last one settled, over all processes. */
  seconds: number;
  errorSamples: string[];
}

/** The client processes. `start` then `connect` / `disconnect` as often as needed, `stop` at the end. */
export class ClientFleet {
  readonly procs: FleetProcess[] = [];

  static async start(processes: number): Promise<ClientFleet> {
    const f = new ClientFleet();
    try {
      await Promise.all(
        Array.from({ length: processes }, async () => {
          const child = forkRaised("fleet-worker.ts");
          const p: FleetProcess = {
            child,
            pid: child.pid ?? 0,
            nofile: { soft: "?", hard: "?" },
            connected: 0,
            errors: 0,
          };
          f.procs.push(p);
          p.nofile = await nextMessage<FleetReport, FleetReport & { t: "ready" }>(
            child,
            (m) => (m.t === "ready" ? m : undefined),
            60_000,
          ).then((m) => m.nofile);
          child.on("message", (m: FleetReport) => {
            if (m.t === "progress" || m.t === "connected") {
              p.connected = m.connected;
              p.errors = m.errors;
            }
          });
        }),
      );
    } catch (err) {
      f.stop();
      throw err;
    }
    return f;
  }

  /**
   * Opens `perProcess[i]` targets on process i (each target's count of clients) and resolves when every
   * handshake has settled; `onProgress` every second with the totals so far.
   */
  async connect(
    perProcess: FleetTarget[][],
    o: { addresses: string[]; concurrency: number; timeoutMs: number },
    onProgress: (connected: number, errors: number) => void,
  ): Promise<ConnectResult> {
    const t0 = performance.now();
    const timer = setInterval(
      () =>
        onProgress(
          this.procs.reduce((a, p) => a + p.connected, 0),
          this.procs.reduce((a, p) => a + p.errors, 0),
        ),
      1000,
    );
    try {
      const results = await Promise.all(
        this.procs.map((p, i) => {
          p.connected = 0;
          p.errors = 0;
          const cmd: FleetCommand = { t: "connect", targets: perProcess[i] ?? [], ...o };
          p.child.send(cmd);
          return nextMessage<FleetReport, FleetReport & { t: "connected" }>(
            p.child,
            (m) => (m.t === "connected" ? m : undefined),
            3_600_000,
          );
        }),
      );
      return {
        connected: results.reduce((a, r) => a + r.connected, 0),
        errors: results.reduce((a, r) => a + r.errors, 0),
        seconds: (performance.now() - t0) / 1000,
        errorSamples: results.flatMap((r) => r.errorSamples).slice(0, 5),
      };
    } finally {
      clearInterval(timer);
    }
  }

  /** Closes every client; resolves with the number the servers had dropped before (should be 0). */
  async disconnect(): Promise<number> {
    const r = await Promise.all(
      this.procs.map((p) => {
        p.child.send({ t: "disconnect" } satisfies FleetCommand);
        return nextMessage<FleetReport, number>(
          p.child,
          (m) => (m.t === "disconnected" ? m.dropped : undefined),
          120_000,
        );
      }),
    );
    return r.reduce((a, b) => a + b, 0);
  }

  stop(): void {
    for (const p of this.procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
  }
}
