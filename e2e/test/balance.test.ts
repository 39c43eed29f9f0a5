// Connection balance after a scale-out, on the real node (issue 16, item 5; docs/operator.md, "Connection
// balance"): ~400 real Socket.IO clients from this process on 2 chat-nodes, scaled to 4. With
// spec.rebalance off the new pods stay empty; switched on, the two full pods shed sockets until every pod
// is within ±20 % of the average, while a steady sender's messages are all stored and delivered.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
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
  withinBand,
} from "../src/balance.js";
import { startVibeTalkCluster, type VibeTalkCluster } from "../src/index.js";
import { createGroup, register, RoamingClient, SteadySender, verifyDelivery } from "../src/traffic.js";

const FILLER_USERS = 36;
const FILLER_SOCKETS = 360;
const READER_USERS = 4;
const READER_SOCKETS = 20;
const INTERVAL_SECONDS = 10;
const JITTER_SECONDS = 3;

let cluster: VibeTalkCluster;
const clients: RoamingClient[] = [];

before(async () => {
  cluster = await startVibeTalkCluster({
    replicas: 2,
    partitions: 16,
    drainSeconds: 5,
    spec: { rebalance: { enabled: false, intervalSeconds: INTERVAL_SECONDS, jitterSeconds: JITTER_SECONDS } },
    log: (m) => console.log(`[cluster] ${m}`),
  });
});
after(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

const log = (m: string): void => console.log(`[balance] ${m}`);

/**
 * Waits until the pods' annotations account for `total` connections on `pods` Ready pods (or one more: the
 * steady sender's RoamingClient.live() racing its own rejoin can leave a second socket open).
 */
async function waitCounted(pods: number, total: number): Promise<Record<string, number>> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const counts = await podCounts(cluster);
    const sum = Object.values(counts).reduce((a, b) => a + b, 0);
    if (Object.keys(counts).length === pods && sum >= total && sum <= total + 1) return counts;
    if (Date.now() > deadline)
      throw new Error(`counts ${describeCounts(counts)} (sum ${sum}), want ${total}`);
    await sleep(250);
  }
}

let sender: Awaited<ReturnType<typeof register>>;
let senderClient: RoamingClient;
let readers: { member: Awaited<ReturnType<typeof register>>; client: RoamingClient }[] = [];
let channels: string[] = [];
let total = 0;
/** The counts right after the scale-out: the two full pods and the two empty ones. */
let afterScaleOut: Record<string, number> = {};

test("spec.rebalance off: after 2 → 4 the two new pods stay empty (WebSocket clients stay where they are)", async () => {
  const nodes = cachedNodes(cluster);
  const [first] = await nodes();
  assert.ok(first);
  sender = await register(first.url, "bal_sender");
  const readerUsers = await registerMany(first.url, "bal_reader", READER_USERS);
  const fillers = await registerMany(first.url, "bal_filler", FILLER_USERS);
  channels = [];
  for (let i = 0; i < 4; i++)
    channels.push(await createGroup(first.url, sender, `balance ${i}`, readerUsers));
  // the fillers follow a channel nobody writes in: after a reconnect they sync it, as a client does
  const quiet = await createGroup(first.url, sender, "quiet", fillers);
  senderClient = new RoamingClient(sender, nodes, channels);
  readers = clientsOf(readerUsers, READER_SOCKETS, nodes, channels).map((client, i) => ({
    member: readerUsers[i % READER_USERS]!,
    client,
  }));
  const fill = clientsOf(fillers, FILLER_SOCKETS, nodes, [quiet]);
  clients.push(senderClient, ...readers.map((r) => r.client), ...fill);
  const t0 = Date.now();
  await connectAll(clients);
  total = clients.length;
  log(`${total} sockets connected in ${Date.now() - t0} ms`);
  const onTwo = await waitCounted(2, total);
  log(`on 2 pods: ${describeCounts(onTwo)}`);

  await cluster.patchSpec({ replicas: 4 });
  const onFour = await waitCounted(4, total);
  afterScaleOut = onFour;
  log(`scaled to 4: ${describeCounts(onFour)}`);
  // past the longest first round (interval + jitter) by a few seconds: nothing moves while the switch is off
  const waitS = INTERVAL_SECONDS + JITTER_SECONDS + 3;
  await sleep(waitS * 1000);
  const still = await waitCounted(4, total);
  log(`after ${waitS} s with rebalance off: ${describeCounts(still)}`);
  assert.equal(withinBand(still), false, "unbalanced while the switch is off");
  const average = total / 4;
  const empty = Object.values(still).filter((c) => c < average * 0.8);
  assert.equal(empty.length, 2, `the two new pods below the band: ${describeCounts(still)}`);
  assert.equal(await latestRound(cluster), undefined, "no balance round published");
});

test("spec.rebalance on: every pod ends within ±20 % of the average; messages sent while shedding are all stored and delivered", async () => {
  assert.ok(total > 300, "the first test connected the clients");
  const steady = new SteadySender(senderClient, channels, 10);
  steady.start();
  await sleep(3000);
  const readerReconnectsBefore = readers.reduce((s, r) => s + r.client.reconnects, 0);
  const shedBefore = await shedTotal(cluster);
  assert.equal(shedBefore, 0);

  const t0 = Date.now();
  await cluster.patchSpec({ rebalance: { enabled: true } });
  const balanced = await waitBalanced(cluster, {
    timeoutMs: 180_000,
    expectPods: 4,
    expectTotal: total,
    log,
  });
  log(`within ±20 % of the average after ${balanced.ms} ms (spec patched at +0)`);
  // the last round's sockets have reconnected; messages keep flowing a little longer
  await sleep(5000);
  await steady.stop();
  await sleep(3000);

  const final = await waitCounted(4, total);
  log(`final: ${describeCounts(final)}`);
  assert.ok(withinBand(final), `every pod within ±20 % of the average at the end: ${describeCounts(final)}`);
  const round = await latestRound(cluster);
  assert.ok(round && round.round >= 1, "the operator published balance rounds");
  const shed = await shedTotal(cluster);
  // sockets that left the full pods (net: some may come back once a round expired)
  const full = Object.keys(afterScaleOut).filter((p) => afterScaleOut[p]! > total / 4);
  const moved = full.reduce((s, p) => s + afterScaleOut[p]! - (final[p] ?? 0), 0);
  log(
    `rounds ${round.round}, sockets shed ${shed} (vibetalk_sockets_shed_total), in ${(Date.now() - t0) / 1000} s`,
  );
  assert.ok(shed >= moved, `shed ${shed} at least the ${moved} sockets that left the full pods`);
  // at most a fifth of a pod's sockets per round
  const perRound = full.reduce((s, p) => s + Math.floor(afterScaleOut[p]! * 0.2), 0);
  assert.ok(
    shed <= round.round * perRound,
    `shed ${shed} within ${round.round} rounds of at most ${perRound}`,
  );

  const readerReconnects = readers.reduce((s, r) => s + r.client.reconnects, 0) - readerReconnectsBefore;
  assert.ok(readerReconnects > 0, "some reader sockets were shed (else nothing was tested)");
  const [anyNode] = await cluster.readyChatNodes();
  let acked = 0;
  for (const r of readers) {
    const report = await verifyDelivery(anyNode!.url, r.member, r.client, steady, channels);
    acked = report.acked;
  }
  log(
    `messages acked ${acked}, every one stored once and delivered to all ${readers.length} reader sockets (${readerReconnects} reader reconnects while shedding)`,
  );

  const logs = await Promise.all(Object.keys(final).map((pod) => cluster.podLogs(pod)));
  assert.ok(
    logs.some((l) => l.includes('"event":"sockets.shed"')),
    "a chat-node logged its shed (event sockets.shed)",
  );
});
