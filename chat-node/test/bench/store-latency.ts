// Store baseline on the server MONGODB_URL names (FerretDB from testkit by default): insert and
// update latency at the chat's collection sizes (the store's own ceiling, printed beside the
// chat's numbers: docs/performance.md). Usage: node --import tsx chat-node/test/bench/store-latency.ts [docs=10000]
import { randomBytes } from "node:crypto";
import { startMongo, type MongoService } from "@vibetalk/testkit";
import { MongoStore } from "../../src/adapters/mongo-store.js";
import { assignSeqs } from "../../src/domain/sequencing.js";

const size = Number(process.argv[2] ?? 10_000);
let mongo: MongoService | undefined;
const url = process.env["MONGODB_URL"] ?? (mongo = await startMongo()).url;
const store = await MongoStore.connect(url);
const p = (a: number[], q: number) => a.sort((x, y) => x - y)[Math.floor(q * (a.length - 1))]?.toFixed(1);
try {
  const ch = randomBytes(12).toString("hex");
  const msg = (i: number) => ({
    channelId: ch,
    senderId: "u",
    clientMsgId: `c${i}`,
    body: "x".repeat(100),
    fileIds: [],
    sentAt: Date.now(),
  });
  // Fill
  for (let i = 0; i < size; i += 1000)
    await store.insertOrdered(
      assignSeqs(
        Array.from({ length: 1000 }, (_, k) => msg(i + k)),
        i,
      ),
    );
  let last = size;
  for (const n of [1, 20, 50]) {
    const t: number[] = [];
    for (let r = 0; r < 30; r++) {
      const docs = assignSeqs(
        Array.from({ length: n }, (_, k) => msg(last + k)),
        last,
      );
      const t0 = performance.now();
      await store.insertOrdered(docs);
      t.push(performance.now() - t0);
      last += n;
    }
    console.log(`insert ${n} docs at ${size} docs: p50 ${p(t, 0.5)} ms p99 ${p(t, 0.99)} ms`);
  }
  const reads: number[] = [];
  for (let r = 0; r < 20; r++) {
    const t0 = performance.now();
    await store.messagesAfter(ch, last - 60, 50);
    reads.push(performance.now() - t0);
  }
  console.log(`page of 50: p50 ${p(reads, 0.5)} ms`);
  const timeLastSeq = async (label: string) => {
    const t: number[] = [];
    for (let r = 0; r < 10; r++) {
      const t0 = performance.now();
      if ((await store.lastSeq(ch)) !== last) throw new Error("wrong lastSeq");
      t.push(performance.now() - t0);
    }
    console.log(`lastSeq (${label}): p50 ${p(t, 0.5)} ms`);
  };
  await timeLastSeq("no channel head");
  const now = new Date();
  await store.createChannel(
    {
      id: ch,
      type: "group",
      name: "b",
      createdBy: "u",
      createdAt: now,
      lastSeq: 0,
      lastMessage: null,
      lastMessageAt: now,
      memberCount: 0,
    },
    [],
  );
  const head = (seq: number) => ({
    channelId: ch,
    lastSeq: seq,
    lastMessage: { seq, senderId: "u", body: "", hasFiles: false, createdAt: now },
  });
  await store.raiseChannelHeads([head(last - 150)]);
  await timeLastSeq("head 150 behind");
  await store.raiseChannelHeads([head(last)]);
  await timeLastSeq("fresh head");
  const finds: number[] = [];
  for (let r = 0; r < 10; r++) {
    const t0 = performance.now();
    await store.findByClientMsgId(ch, "u", `c${r * 7}`);
    finds.push(performance.now() - t0);
  }
  console.log(`findByClientMsgId: p50 ${p(finds, 0.5)} ms`);
} finally {
  await store.close();
  await mongo?.stop();
}
