// CPU time of the servers a run uses, read from /proc: on a shared machine, the CPU a message costs moves
// far less with the neighbours' load than messages per second do. Processes are found by the loopback
// ports they listen on (chat-nodes, RabbitMQ, FerretDB, PostgreSQL with its backends, Redis).
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
