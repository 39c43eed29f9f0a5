// Connection balance after a scale-out (issue 16, item 5): `npm run bench -- --balance [--write]`.
// On the real node (e2e's startVibeTalkCluster: control plane, kubelet, the operator and chat-node images),
// BENCH_BALANCE_SOCKETS (6000) Socket.IO clients in this process on 2 chat-nodes, scaled to 4 with
// spec.rebalance off for a while (the baseline: what the cluster does without it), then on with its defaults;
// measured: the time until every pod is within ±20 % of the average, the shed rate, and messages lost
// (acked but not stored, or stored but not delivered to a reader) of a steady sender running throughout.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { repoRoot } from "@vibetalk/testkit";
import {
  cachedNodes,
  clientsOf,
  connectAll,
  describeCounts,
  latestRound,
  podCounts,
  registerMany,
  shedTotal,
  waitBalanced,
} from "../../e2e/src/balance.js";
import { startVibeTalkCluster, type VibeTalkCluster } from "../../e2e/src/index.js";
import {
  createGroup,
  register,
  RoamingClient,
  SteadySender,
  verifyDelivery,
  type Member,
} from "../../e2e/src/traffic.js";
import { table, writeSection } from "./report.js";

const num = (name: string, d: number): number => Number(process.env[name] ?? d);
const head = (): string =>
  execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot, encoding: "utf8" }).trim();
const log = (m: string): void => console.log(`[bench] ${m}`);

async function waitTotal(c: VibeTalkCluster, pods: number, total: number, timeoutMs = 180_000) {
  const t0 = Date.now();
  for (;;) {
    const counts = await podCounts(c);
    const sum = Object.values(counts).reduce((a, b) => a + b, 0);
    // or one more: the steady sender's RoamingClient.live() racing its rejoin can leave a second socket
    if (Object.keys(counts).length === pods && sum >= total && sum <= total + 1) return counts;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`counts ${describeCounts(counts)} (sum ${sum}), want ${total}`);
    await sleep(500);
  }
}

const spread = (counts: Record<string, number>): string => {
  const v = Object.values(counts);
  const avg = v.reduce((a, b) => a + b, 0) / v.length;
  return `max ${(Math.max(...v) / avg).toFixed(2)}× / min ${(Math.min(...v) / avg).toFixed(2)}× the average`;
};

export async function runBalanceBench(argv: string[]): Promise<void> {
  const sockets = num("BENCH_BALANCE_SOCKETS", 6000);
  const users = num("BENCH_BALANCE_USERS", 60);
  const offSeconds = num("BENCH_BALANCE_OFF_SECONDS", 45);
  const started = Date.now();
  log(`connection balance: ${sockets} sockets of ${users} users, 2 → 4 chat-nodes on the real node…`);
  const cluster = await startVibeTalkCluster({
    replicas: 2,
    partitions: 16,
    drainSeconds: 10,
    spec: { rebalance: { enabled: false } },
    log: (m) => console.log(`[cluster] ${m}`),
  });
  const clients: RoamingClient[] = [];
  try {
    const nodes = cachedNodes(cluster, 2000);
    const [first] = await nodes();
    if (!first) throw new Error("no Ready chat-node");
    const sender = await register(first.url, "bench_sender");
    const readerUsers = await registerMany(first.url, "bench_reader", 4);
    const fillers = await registerMany(first.url, "bench_filler", users);
    const channels: string[] = [];
    for (let i = 0; i < 4; i++)
      channels.push(await createGroup(first.url, sender, `bench ${i}`, readerUsers));
    const quiet = await createGroup(first.url, sender, "quiet", fillers);
    const senderClient = new RoamingClient(sender, nodes, channels);
    const readers = clientsOf(readerUsers, 20, nodes, channels);
    const readerOf = new Map<RoamingClient, Member>(
      readers.map((r, i) => [r, readerUsers[i % readerUsers.length]!]),
    );
    const fill = clientsOf(fillers, sockets - readers.length - 1, nodes, [quiet]);
    clients.push(senderClient, ...readers, ...fill);

    const tc = Date.now();
    await connectAll(clients, 50);
    const connectMs = Date.now() - tc;
    const connectRate = clients.length / (connectMs / 1000);
    log(`${clients.length} sockets connected in ${connectMs} ms (${connectRate.toFixed(0)}/s)`);
    const onTwo = await waitTotal(cluster, 2, clients.length);
    log(`on 2 pods: ${describeCounts(onTwo)}`);

    await cluster.patchSpec({ replicas: 4 });
    const onFour = await waitTotal(cluster, 4, clients.length);
    log(`scaled to 4: ${describeCounts(onFour)}; rebalance off for ${offSeconds} s (baseline)`);
    await sleep(offSeconds * 1000);
    const off = await waitTotal(cluster, 4, clients.length);
    log(`after ${offSeconds} s off: ${describeCounts(off)}`);

    const steady = new SteadySender(senderClient, channels, 10);
    steady.start();
    await sleep(3000);
    const tb = Date.now();
    await cluster.patchSpec({ rebalance: { enabled: true } });
    const balanced = await waitBalanced(cluster, {
      timeoutMs: 600_000,
      expectPods: 4,
      expectTotal: clients.length,
      log,
    });
    const balanceMs = Date.now() - tb;
    const round = await latestRound(cluster);
    const shed = await shedTotal(cluster);
    log(
      `within ±20 % after ${balanceMs} ms: ${describeCounts(balanced.counts)}; ${round?.round ?? 0} rounds, ${shed} shed`,
    );
    await sleep(8000);
    await steady.stop();
    await sleep(3000);
    const final = await waitTotal(cluster, 4, clients.length);
    const [anyNode] = await nodes();
    let lost = 0;
    let acked = 0;
    let undelivered = 0;
    for (const r of readers) {
      try {
        const report = await verifyDelivery(anyNode!.url, readerOf.get(r)!, r, steady, channels);
        lost = Math.max(lost, report.lost);
        acked = report.acked;
      } catch (err) {
        undelivered += 1;
        console.error(err);
      }
    }
    const readerReconnects = readers.reduce((s, r) => s + r.reconnects, 0);
    const shedRate = shed / (balanceMs / 1000);
    const intervalSeconds = 15;
    const rows = [
      ["connections (sockets from this process)", String(clients.length)],
      ["on 2 pods, before the scale-out", describeCounts(onTwo)],
      [`baseline: rebalance off, ${offSeconds} s after 2 → 4`, `${describeCounts(off)} (${spread(off)})`],
      [
        "rebalance on (defaults: ±20 %, ≤20 % per round, every 15 s, 5 s jitter): every pod within ±20 %",
        `${(balanceMs / 1000).toFixed(1)} s`,
      ],
      ["at that moment", `${describeCounts(balanced.counts)} (${spread(balanced.counts)})`],
      ["rounds published / sockets shed (vibetalk_sockets_shed_total)", `${round?.round ?? 0} / ${shed}`],
      ["shed rate (sockets shed ÷ balance time)", `${shedRate.toFixed(0)}/s`],
      ["baseline: connect rate at start (50 at a time)", `${connectRate.toFixed(0)}/s`],
      ["ratio: shed rate ÷ connect rate", (shedRate / connectRate).toFixed(2)],
      ["ratio: balance time ÷ round interval", (balanceMs / 1000 / intervalSeconds).toFixed(1)],
      ["end of run", `${describeCounts(final)} (${spread(final)})`],
      ["messages acked during shedding (10/s) / lost", `${acked} / ${lost}`],
      ["reader sockets missing a message (of 20, live or by sync)", String(undelivered)],
      ["reader reconnects (shed readers)", String(readerReconnects)],
    ];
    const body = [
      `Latest run: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, images built from ${head()}, this machine (2 cores, the cluster and the ${clients.length} clients on it), ${((Date.now() - started) / 60000).toFixed(1)} min. Command:`,
      "",
      "```sh",
      `BENCH_BALANCE_SOCKETS=${sockets} BENCH_BALANCE_USERS=${users} npm run bench -- --balance --write`,
      "```",
      "",
      `The real node (control plane, kubelet, the operator and chat-node images) with a ChatCluster of 2 chat-nodes; ${clients.length} Socket.IO clients (WebSocket) in the benchmark process, each connected to a random Ready pod, ${users} users with several sockets each, 20 reader sockets of 4 users in 4 groups and one steady sender (10 messages/s, each retried with its clientMsgId until acked). Scaled to 4 with spec.rebalance off (the baseline: the new pods stay empty), then switched on with its defaults while the sender runs. Balanced = every Ready pod's \`vibetalk.io/connections\` within ±20 % of their average. Lost = acked but not stored once in order, or not delivered to a reader socket live or by sync.`,
      "",
      table(["figure", "value"], rows),
    ].join("\n");
    console.log(body);
    if (argv.includes("--write")) {
      await writeSection(join(repoRoot, "bench/RESULTS.md"), {
        heading: "Connection balance after a scale-out",
        body,
      });
      log("wrote the connection balance section of bench/RESULTS.md");
    }
    if (lost > 0 || undelivered > 0)
      throw new Error(`messages lost: ${lost}, readers missing messages: ${undelivered}`);
  } finally {
    for (const c of clients) c.close();
    await cluster.stop();
  }
}
