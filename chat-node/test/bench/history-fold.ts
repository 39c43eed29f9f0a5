// History with folding on the server MONGODB_URL names (FerretDB from testkit by default): the time to
// serve a 50-message page of plain messages beside a page of 50 messages that ~60 edits and reactions
// target, through the same historyPage as GET /channels/:id/messages (docs/decisions.md, 41).
// Run by hand, not in the tests: node --import tsx chat-node/test/bench/history-fold.ts [rounds=30]
import { randomBytes } from "node:crypto";
import { startMongo, type MongoService } from "@vibetalk/testkit";
import { MongoStore } from "../../src/adapters/mongo-store.js";
import type { AcceptedMessage } from "../../src/domain/messages.js";
import { assignSeqs } from "../../src/domain/sequencing.js";
import { historyPage } from "../../src/services/chat-service.js";

const rounds = Number(process.argv[2] ?? 30);
let mongo: MongoService | undefined;
const url = process.env["MONGODB_URL"] ?? (mongo = await startMongo()).url;
const store = await MongoStore.connect(url);
const users = Array.from({ length: 5 }, () => randomBytes(12).toString("hex"));
const p50 = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(0.5 * (a.length - 1))] ?? NaN;

function plain(channelId: string, i: number): AcceptedMessage {
  return {
    channelId,
    senderId: users[i % users.length] as string,
    clientMsgId: `c${i}`,
    body: "x".repeat(100),
    fileIds: [],
    sentAt: Date.now(),
  };
}

async function time(channelId: string, afterSeq: number, expect: number): Promise<number> {
  const t: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const page = await historyPage(store, channelId, { afterSeq }, 50);
    t.push(performance.now() - t0);
    if (page.messages.length !== expect) throw new Error(`page of ${page.messages.length}, not ${expect}`);
  }
  return p50(t);
}

try {
  // Plain: 50 messages. Folded: the same 50, then 60 events targeting them (edits by the author, reactions).
  const [P, F] = [randomBytes(12).toString("hex"), randomBytes(12).toString("hex")];
  await store.insertOrdered(
    assignSeqs(
      Array.from({ length: 50 }, (_, i) => plain(P, i)),
      0,
    ),
  );
  const events: AcceptedMessage[] = Array.from({ length: 60 }, (_, k) => {
    const targetSeq = ((k * 7) % 50) + 1;
    const base = { ...plain(F, 1000 + k), targetSeq };
    return k % 3 === 0
      ? {
          ...base,
          senderId: users[(targetSeq - 1) % users.length] as string,
          kind: "edit" as const,
          body: `edit ${k}`,
        }
      : { ...base, kind: "reaction" as const, body: "", emoji: ["👍", "🎉", "❤"][k % 3] as string, on: true };
  });
  await store.insertOrdered(assignSeqs([...Array.from({ length: 50 }, (_, i) => plain(F, i)), ...events], 0));
  await time(P, 0, 50); // warm up
  const plainMs = await time(P, 0, 50);
  const foldedMs = await time(F, 0, 50);
  console.log(
    `history page of 50 (p50 of ${rounds}): plain ${plainMs.toFixed(1)} ms, with 60 edits/reactions ` +
      `${foldedMs.toFixed(1)} ms, ratio ${(foldedMs / plainMs).toFixed(2)}`,
  );
} finally {
  await store.close();
  await mongo?.stop();
}
