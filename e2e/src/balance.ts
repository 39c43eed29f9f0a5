/**
 * Helpers of the connection balance suite and benchmark (docs/operator.md, "Connection balance"): many real
 * Socket.IO clients from this process, the pods' connection counts as the operator reads them (their
 * `vibetalk.io/connections` annotations), and the balance rounds the operator published.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  ANNOTATION_CONNECTIONS,
  BALANCE_KEY,
  decodeBalanceRound,
  type BalanceRound,
} from "@vibetalk/protocol/cluster";
import type { VibeTalkCluster } from "./cluster.js";
import { register, RoamingClient, type Member } from "./traffic.js";

type NodeList = () => Promise<{ name: string; url: string }[]>;

/** The Ready chat-nodes, listed at most once per `ttlMs` (hundreds of clients reconnect through it). */
export function cachedNodes(cluster: VibeTalkCluster, ttlMs = 1000): NodeList {
  let at = 0;
  let list: Promise<{ name: string; url: string }[]> | null = null;
  return () => {
    if (!list || Date.now() - at > ttlMs) {
      at = Date.now();
      list = cluster.readyChatNodes();
    }
    return list;
  };
}

/** Registers users one after another, waiting out the per-address limit (10/s, burst 50) when it answers 429. */
export async function registerMany(url: string, prefix: string, n: number): Promise<Member[]> {
  const out: Member[] = [];
  for (let i = 0; i < n; i++) {
    for (;;) {
      try {
        out.push(await register(url, `${prefix}_${i}`));
        break;
      } catch (err) {
        if (!String(err).includes("429")) throw err;
        await sleep(150);
      }
    }
  }
  return out;
}

/** Connects every client, `concurrency` at a time. */
export async function connectAll(clients: RoamingClient[], concurrency = 25): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < clients.length) await clients[next++]!.connect();
    }),
  );
}

/** `sockets` clients spread over `users` (several sockets per user, as devices), each following `channel`. */
export function clientsOf(
  users: Member[],
  sockets: number,
  nodes: NodeList,
  channels: string[],
): RoamingClient[] {
  return Array.from(
    { length: sockets },
    (_, i) => new RoamingClient(users[i % users.length]!, nodes, channels),
  );
}

/** Connections per Ready, non-terminating chat-node pod, from the annotations the operator balances on. */
export async function podCounts(cluster: VibeTalkCluster): Promise<Record<string, number>> {
  const pods = await cluster.core.listNamespacedPod({
    namespace: cluster.namespace,
    labelSelector: `app.kubernetes.io/instance=${cluster.name},app.kubernetes.io/component=chat-node`,
  });
  const out: Record<string, number> = {};
  for (const p of pods.items) {
    if (p.metadata?.deletionTimestamp) continue;
    if (!p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) continue;
    out[p.metadata?.name ?? ""] = Number(p.metadata?.annotations?.[ANNOTATION_CONNECTIONS] ?? "0");
  }
  return out;
}

/** Every pod within ± `tolerance` of the average of `counts`. */
export function withinBand(counts: Record<string, number>, tolerance = 0.2): boolean {
  const values = Object.values(counts);
  if (values.length === 0) return false;
  const average = values.reduce((a, b) => a + b, 0) / values.length;
  return values.every((c) => c >= average * (1 - tolerance) && c <= average * (1 + tolerance));
}

export function describeCounts(counts: Record<string, number>): string {
  const names = Object.keys(counts).sort();
  return names.map((n) => `${n.slice(-5)}=${counts[n]}`).join(" ");
}

/** The latest balance round in `<name>-partitions`, if any. */
export async function latestRound(cluster: VibeTalkCluster): Promise<BalanceRound | undefined> {
  const cm = await cluster.core.readNamespacedConfigMap({
    name: `${cluster.name}-partitions`,
    namespace: cluster.namespace,
  });
  return decodeBalanceRound(cm.data?.[BALANCE_KEY]);
}

/** Sum of `vibetalk_sockets_shed_total` over the Ready chat-nodes' /metrics (operations port). */
export async function shedTotal(cluster: VibeTalkCluster): Promise<number> {
  let sum = 0;
  for (const node of await cluster.readyChatNodes()) {
    const ops = node.url.replace(/:8080$/, ":9090");
    const text = await (await fetch(`${ops}/metrics`)).text();
    for (const line of text.split("\n"))
      if (line.startsWith("vibetalk_sockets_shed_total")) sum += Number(line.split(" ").at(-1));
  }
  return sum;
}

/**
 * Polls the pods' counts until every pod is within the band with all `expectTotal` sockets counted (none
 * still reconnecting); returns the time it took and the samples.
 */
export async function waitBalanced(
  cluster: VibeTalkCluster,
  o: {
    timeoutMs: number;
    tolerance?: number;
    log?: (m: string) => void;
    expectPods: number;
    expectTotal: number;
  },
): Promise<{ ms: number; counts: Record<string, number>; samples: string[] }> {
  const t0 = Date.now();
  const samples: string[] = [];
  let last = "";
  for (;;) {
    const counts = await podCounts(cluster);
    const line = describeCounts(counts);
    if (line !== last) {
      samples.push(`+${((Date.now() - t0) / 1000).toFixed(1)} s ${line}`);
      o.log?.(samples.at(-1)!);
      last = line;
    }
    const sum = Object.values(counts).reduce((x, y) => x + y, 0);
    // at least: RoamingClient.live() racing a rejoin can leave one extra socket of the steady sender
    if (
      Object.keys(counts).length === o.expectPods &&
      sum >= o.expectTotal &&
      withinBand(counts, o.tolerance ?? 0.2)
    )
      return { ms: Date.now() - t0, counts, samples };
    if (Date.now() - t0 > o.timeoutMs)
      throw new Error(`not within the band after ${o.timeoutMs} ms:\n${samples.join("\n")}`);
    await sleep(250);
  }
}
