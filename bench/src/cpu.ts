// CPU time of the servers a run uses, read from /proc: on a shared machine, the CPU a message costs moves
// far less with the neighbours' load than messages per second do. Processes are found by the loopback
// ports they listen on (chat-nodes, RabbitMQ, FerretDB, PostgreSQL with its backends, Redis); cpuClasses,
// cpuSample and cpuPerMessage break a run down by process class, the bench process (its clients) included.
import { readFile, readdir, readlink } from "node:fs/promises";

const TICKS_PER_SECOND = 100; // getconf CLK_TCK on Linux

/** Pids of the processes listening on these TCP ports. */
export async function pidsListeningOn(ports: number[]): Promise<number[]> {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = await readFile(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      const port = parseInt(f[1]?.split(":")[1] ?? "", 16);
      if (f[3] === "0A" && ports.includes(port) && f[9]) inodes.add(`socket:[${f[9]}]`);
    }
  }
  const pids = new Set<number>();
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (inodes.has(await readlink(`/proc/${pid}/fd/${fd}`))) {
          pids.add(Number(pid));
          break;
        }
      } catch {
        // gone
      }
    }
  }
  return [...pids];
}

interface Stat {
  ppid: number;
  own: number;
  children: number;
}

async function stat(pid: string): Promise<Stat | null> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // After the command: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
    return {
      ppid: Number(f[1]),
      own: Number(f[11]) + Number(f[12]),
      children: Number(f[13]) + Number(f[14]),
    };
  } catch {
    return null;
  }
}

/**
 * CPU seconds used so far by these processes and their direct children (PostgreSQL's backends); a child
 * that exited and was reaped counts in its parent's cumulative children time, so deltas stay whole.
 */
export async function cpuSeconds(roots: number[]): Promise<number> {
  const rootSet = new Set(roots);
  let ticks = 0;
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const s = await stat(pid);
    if (!s) continue;
    if (rootSet.has(Number(pid))) ticks += s.own + s.children;
    else if (rootSet.has(s.ppid)) ticks += s.own;
  }
  return ticks / TICKS_PER_SECOND;
}

/** A class of processes whose CPU is reported together (all chat-nodes, RabbitMQ, …). */
export interface CpuClass {
  name: string;
  /** Roots (with their direct children, as cpuSeconds counts them). */
  pids: number[];
}

/** The name of the benchmark process's own class: `process.cpuUsage()` (its clients run in it). */
export const BENCH_PROCESS = "bench process (clients)";

/**
 * The process classes of a run, found by the ports they listen on: the servers under test (`servers`, e.g.
 * "chat-nodes" or "textbook servers"), RabbitMQ, FerretDB, PostgreSQL with its backends, Redis; the bench
 * process and any client worker processes (`clientPids`) are added. A port left out (0) leaves its class out.
 */
export async function cpuClasses(o: {
  servers: { name: string; ports: number[] };
  rabbitPort?: number;
  mongoPort?: number;
  postgresPort?: number;
  redisPort?: number;
  clientPids?: number[];
}): Promise<CpuClass[]> {
  const found = async (name: string, ports: (number | undefined)[]): Promise<CpuClass[]> => {
    const p = ports.filter((x): x is number => !!x);
    return p.length ? [{ name, pids: await pidsListeningOn(p) }] : [];
  };
  return [
    ...(await found(o.servers.name, o.servers.ports)),
    ...(await found("RabbitMQ", [o.rabbitPort])),
    ...(await found("FerretDB", [o.mongoPort])),
    ...(await found("PostgreSQL", [o.postgresPort])),
    ...(await found("Redis", [o.redisPort])),
    ...(o.clientPids?.length ? [{ name: "client workers", pids: o.clientPids }] : []),
  ];
}

/** CPU seconds so far of each class, and of the bench process (BENCH_PROCESS). */
export type CpuSample = Map<string, number>;

export async function cpuSample(classes: CpuClass[]): Promise<CpuSample> {
  const own = process.cpuUsage();
  const out: CpuSample = new Map([[BENCH_PROCESS, (own.user + own.system) / 1e6]]);
  for (const c of classes) out.set(c.name, await cpuSeconds(c.pids));
  return out;
}

/** Milliseconds of CPU per message of each class, and their total. */
export interface CpuPerMessage {
  perClass: [string, number][];
  total: number;
}

/** Milliseconds of CPU per message of each class between two samples, and their total. */
export function cpuPerMessage(before: CpuSample, after: CpuSample, messages: number): CpuPerMessage {
  const perClass = [...after].map(([k, v]): [string, number] => [
    k,
    ((v - (before.get(k) ?? v)) * 1000) / Math.max(1, messages),
  ]);
  return { perClass, total: perClass.reduce((a, [, v]) => a + v, 0) };
}

/** One table cell: "total (class a, class b, …)" ms/message. */
export const cpuCell = (c: CpuPerMessage): string =>
  `${c.total.toFixed(2)} ms (${c.perClass.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")})`;
