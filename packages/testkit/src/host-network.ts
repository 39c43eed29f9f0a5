/**
 * The host side of the local Kubernetes node: one bridge with the pods' gateway address, an exclusive lock
 * (the node's bridge, iptables chains and pod range are machine-wide, so one node runs at a time), and the
 * clean-up of everything a node leaves behind — also what a killed run left. See docs/development.md.
 */
import {
  existsSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmdirSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { run, runCommand } from "./process.js";
import { toolPath } from "./tools.js";

export const BRIDGE = "vt0";
export const GATEWAY = "10.244.0.1";
export const POD_CIDR = "10.244.0.0/24";
export const CLUSTER_CIDR = "10.244.0.0/16";
export const SERVICE_CIDR = "10.96.0.0/16";

/** Everything the node writes lives under this fixed folder, so a later run finds what a killed one left. */
export const NODE_DIR = join(tmpdir(), "vibetalk-node");
const LOCK = join(tmpdir(), "vibetalk-node.lock");

const SYSCTLS = ["/proc/sys/net/ipv4/ip_forward"];

interface LockState {
  pid: number;
  /** Values of the sysctls before the node changed them, restored by the clean-up. */
  sysctls: Record<string, string>;
}

export interface HostNetwork {
  bridge: string;
  gateway: string;
  podCidr: string;
  clusterCidr: string;
  serviceCidr: string;
  dir: string;
  /** Removes the node's leftovers and the bridge, restores the sysctls, releases the lock. */
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readLock(): LockState | undefined {
  try {
    return JSON.parse(readFileSync(LOCK, "utf8")) as LockState;
  } catch {
    return undefined;
  }
}

function tryLock(state: LockState): boolean {
  try {
    writeFileSync(LOCK, JSON.stringify(state), { flag: "wx" });
    return true;
  } catch {
    return false;
  }
}

/** Processes whose command line mentions the node folder: containerd, its shims, the kubelet, kube-proxy. */
function nodeProcesses(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(NODE_DIR)) pids.push(pid);
    } catch {
      /* gone */
    }
  }
  return pids;
}

async function killAll(pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  for (let i = 0; i < 50 && pids.some(alive); i++) await sleep(100);
}

/** Mount points at or under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  const text = readFileSync("/proc/self/mounts", "utf8");
  const points = text
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .map((p) => p.replace(/\\040/g, " "))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Stops and removes everything of a node: its processes and containers (runc state under the node folder),
 * iptables chains of kube-proxy, mounts (overlay root file systems, secret volumes, network namespaces),
 * log links, the bridge, the folder. Safe to run when nothing is there.
 */
export async function cleanUpNode(kubeProxy = kubeProxyBinary()): Promise<void> {
  const runcRoot = join(NODE_DIR, "runc", "k8s.io");
  // The kubelet and containerd first, so that nothing restarts what is being removed.
  await killAll(
    nodeProcesses().filter((pid) => {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        return /kubelet|kube-proxy|containerd\0|containerd$/.test(cmd.split("\0")[0] ?? "");
      } catch {
        return false;
      }
    }),
  );
  if (existsSync(runcRoot)) {
    for (const id of readdirSync(runcRoot)) {
      await runCommand("runc", ["--root", runcRoot, "delete", "--force", id], { timeoutMs: 20_000 });
    }
  }
  await killAll(nodeProcesses());
  if (kubeProxy) await runCommand(kubeProxy, ["--cleanup"], { timeoutMs: 30_000 });
  await removeKubeChains();
  await removeKubeRouterSets();
  for (let attempt = 0; attempt < 3; attempt++) {
    const points = mountsUnder(NODE_DIR);
    if (points.length === 0) break;
    for (const p of points) await runCommand("umount", ["-l", p], { timeoutMs: 10_000 });
  }
  const containerLogs = "/var/log/containers";
  if (existsSync(containerLogs)) {
    for (const link of readdirSync(containerLogs)) {
      const path = join(containerLogs, link);
      try {
        if (readlinkSync(path).startsWith(NODE_DIR)) unlinkSync(path);
      } catch {
        /* not a link of ours */
      }
    }
    // The kubelet makes the folder; leave it only if something else put files there.
    if (readdirSync(containerLogs).length === 0) rmdirSync(containerLogs);
  }
  await runCommand("ip", ["link", "delete", BRIDGE], { timeoutMs: 10_000 });
  await rm(NODE_DIR, { recursive: true, force: true });
}

/**
 * The kubelet's own chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT), which `kube-proxy
 * --cleanup` leaves: the jumps to them from built-in chains first, then the chains.
 */
async function removeKubeChains(): Promise<void> {
  for (const binary of ["iptables", "ip6tables"]) {
    for (const table of ["filter", "nat", "mangle"]) {
      const listed = await runCommand(binary, ["-w", "-t", table, "-S"], { timeoutMs: 10_000 });
      if (listed.code !== 0) continue;
      const lines = listed.stdout.split("\n");
      for (const line of lines) {
        const m = /^-A (\S+) (.*-j KUBE-\S+.*)$/.exec(line);
        if (m?.[1] && !m[1].startsWith("KUBE-")) {
          await runCommand("sh", ["-c", `${binary} -w -t ${table} -D ${m[1]} ${m[2]}`], {
            timeoutMs: 10_000,
          });
        }
      }
      const chains = lines.map((l) => /^-N (KUBE-\S+)$/.exec(l)?.[1]).filter((c): c is string => !!c);
      for (const c of chains) await runCommand(binary, ["-w", "-t", table, "-F", c], { timeoutMs: 10_000 });
      for (const c of chains) await runCommand(binary, ["-w", "-t", table, "-X", c], { timeoutMs: 10_000 });
    }
  }
}

/** kube-router's ipsets (KUBE-SRC-*, KUBE-DST-*, and the temporary TMP-* ones), once no rule uses them. */
async function removeKubeRouterSets(): Promise<void> {
  const listed = await runCommand("ipset", ["list", "-n"], { timeoutMs: 10_000 }).catch(() => undefined);
  if (!listed || listed.code !== 0) return;
  for (const set of listed.stdout.split("\n").map((l) => l.trim())) {
    if (/^(inet6:)?(KUBE-(SRC|DST)-|TMP-)/.test(set)) {
      await runCommand("ipset", ["destroy", set], { timeoutMs: 10_000 });
    }
  }
}

function kubeProxyBinary(): string | undefined {
  try {
    return toolPath("kube-proxy");
  } catch {
    return undefined;
  }
}

function restoreSysctls(state: LockState | undefined): void {
  for (const [path, value] of Object.entries(state?.sysctls ?? {})) {
    try {
      writeFileSync(path, value);
    } catch {
      /* not ours to fix */
    }
  }
}

/**
 * Takes the machine's node lock (waiting while another live run holds it), removes whatever a killed run
 * left, and creates the bridge with the gateway address. Call before the API server starts: it binds there.
 */
export async function acquireHostNetwork(
  options: { waitMs?: number; log?: (m: string) => void } = {},
): Promise<HostNetwork> {
  const state: LockState = {
    pid: process.pid,
    sysctls: Object.fromEntries(SYSCTLS.map((p) => [p, readFileSync(p, "utf8").trim()])),
  };
  const deadline = Date.now() + (options.waitMs ?? 30 * 60_000);
  let told = false;
  for (;;) {
    const held = readLock();
    if (held && held.pid !== process.pid && alive(held.pid)) {
      if (Date.now() > deadline) throw new Error(`the local node is in use by process ${held.pid} (${LOCK})`);
      if (!told) options.log?.(`waiting for process ${held.pid}, which runs the local node, to finish…`);
      told = true;
      await sleep(1000);
      continue;
    }
    if (held) {
      // A killed run: put its sysctls back as it found them, then take over.
      state.sysctls = { ...state.sysctls, ...held.sysctls };
      unlinkSync(LOCK);
    }
    if (tryLock(state)) break;
  }
  try {
    await cleanUpNode();
    await run("ip", ["link", "add", BRIDGE, "type", "bridge"]);
    await run("ip", ["addr", "add", `${GATEWAY}/24`, "dev", BRIDGE]);
    await run("ip", ["link", "set", BRIDGE, "up"]);
    // Pods reach Services through the host's NAT rules, which route between bridge ports.
    writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
  } catch (err) {
    await cleanUpNode().catch(() => undefined);
    restoreSysctls(state);
    unlinkSync(LOCK);
    throw err;
  }
  return {
    bridge: BRIDGE,
    gateway: GATEWAY,
    podCidr: POD_CIDR,
    clusterCidr: CLUSTER_CIDR,
    serviceCidr: SERVICE_CIDR,
    dir: NODE_DIR,
    release: async () => {
      await cleanUpNode();
      restoreSysctls(state);
      if (readLock()?.pid === process.pid) unlinkSync(LOCK);
    },
  };
}
