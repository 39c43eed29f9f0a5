import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { AcceptedMessage } from "../../src/domain/messages.js";
import { assignSeqs, dedupeBatch, sequenceBatch } from "../../src/domain/sequencing.js";
import { MemorySequenceStore } from "../support/memory-sequence-store.js";

const msg = (channelId: string, senderId: string, clientMsgId: string): { message: AcceptedMessage } => ({
  message: { channelId, senderId, clientMsgId, body: clientMsgId, fileIds: [], sentAt: 1_700_000_000_000 },
});

test("assignSeqs numbers after the last seq with padded ids", () => {
  const docs = assignSeqs([msg("c", "u", "a").message, msg("c", "u", "b").message], 41);
  assert.deepEqual(
    docs.map((d) => [d.seq, d.id]),
    [
      [42, "c:000000000042"],
      [43, "c:000000000043"],
    ],
  );
});

test("dedupeBatch finds repeats of the same channel, sender and clientMsgId only", () => {
  const items = [
    msg("a", "u", "1"),
    msg("b", "u", "1"),
    msg("a", "u", "3"),
    msg("a", "v", "1"),
    msg("a", "u", "1"),
  ];
  const d = dedupeBatch(items);
  assert.deepEqual(
    d.unique.map((i) => `${i.message.channelId}/${i.message.senderId}/${i.message.clientMsgId}`),
    ["a/u/1", "b/u/1", "a/u/3", "a/v/1"],
  );
  assert.deepEqual([...d.repeatOf], [[4, 0]]);
});

test("sequenceBatch stores gap-free and caches the last seq", async () => {
  const store = new MemorySequenceStore();
  const cache = new Map<string, number>();
  const r1 = await sequenceBatch(store, [msg("c", "u", "1"), msg("c", "u", "2")], cache);
  const r2 = await sequenceBatch(store, [msg("c", "v", "1")], cache);
  assert.deepEqual(
    [...r1, ...r2].map((r) => (r.status === "stored" ? r.message.seq : -1)),
    [1, 2, 3],
  );
  assert.equal(store.lastSeqReads, 1);
  assert.deepEqual(store.seqsOf("c"), [1, 2, 3]);
});

test("a redelivered message already stored comes back with its stored seq (I3)", async () => {
  const store = new MemorySequenceStore();
  await sequenceBatch(store, [msg("c", "u", "1"), msg("c", "u", "2")], new Map());
  // A new owner (empty cache) gets the same messages again plus a new one.
  const r = await sequenceBatch(store, [msg("c", "u", "2"), msg("c", "u", "3")], new Map());
  assert.deepEqual(
    r.map((x) => (x.status === "stored" ? [x.message.seq, x.duplicate] : null)),
    [
      [2, true],
      [3, false],
    ],
  );
  assert.deepEqual(store.seqsOf("c"), [1, 2, 3]);
});

test("a repeat inside one batch is stored once", async () => {
  const store = new MemorySequenceStore();
  const r = await sequenceBatch(
    store,
    [msg("c", "u", "1"), msg("c", "u", "1"), msg("c", "u", "2")],
    new Map(),
  );
  assert.deepEqual(
    r.map((x) => (x.status === "stored" ? [x.message.seq, x.duplicate] : null)),
    [
      [1, false],
      [1, true],
      [2, false],
    ],
  );
});

test("a stale cache (another writer took the seq) re-reads the store and neither forks nor gaps", async () => {
  const store = new MemorySequenceStore();
  const cacheA = new Map<string, number>();
  const cacheB = new Map<string, number>();
  await sequenceBatch(store, [msg("c", "u", "1")], cacheA);
  await sequenceBatch(store, [msg("c", "v", "1"), msg("c", "v", "2")], cacheB);
  const r = await sequenceBatch(store, [msg("c", "u", "2")], cacheA); // A thinks last = 1
  assert.equal(r[0]?.status === "stored" && r[0].message.seq, 4);
  assert.deepEqual(store.seqsOf("c"), [1, 2, 3, 4]);
});

test("a failure stops the channel: later messages fail, earlier ones stay stored", async () => {
  const store = new MemorySequenceStore();
  store.failNextInsertAt = 1;
  const cache = new Map<string, number>();
  const r = await sequenceBatch(store, [msg("c", "u", "1"), msg("c", "u", "2"), msg("c", "u", "3")], cache);
  assert.deepEqual(
    r.map((x) => x.status),
    ["stored", "failed", "failed"],
  );
  assert.equal(cache.has("c"), false, "the cache is dropped after a failure");
  const again = await sequenceBatch(store, [msg("c", "u", "2"), msg("c", "u", "3")], cache);
  assert.deepEqual(
    again.map((x) => (x.status === "stored" ? x.message.seq : -1)),
    [2, 3],
  );
});

test("property: interleaved owners with retries keep every channel gap-free with one message per key", async () => {
  const arb = fc.array(
    fc.record({
      owner: fc.integer({ min: 0, max: 2 }),
      channel: fc.constantFrom("a", "b"),
      sends: fc.array(fc.record({ sender: fc.constantFrom("u", "v"), id: fc.integer({ min: 0, max: 15 }) }), {
        minLength: 1,
        maxLength: 6,
      }),
    }),
    { minLength: 1, maxLength: 25 },
  );
  await fc.assert(
    fc.asyncProperty(arb, async (batches) => {
      const store = new MemorySequenceStore();
      const caches = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];
      const keys = new Map<string, Set<string>>();
      for (const b of batches) {
        const items = b.sends.map((s) => msg(b.channel, s.sender, `m${s.id}`));
        const res = await sequenceBatch(store, items, caches[b.owner] as Map<string, number>);
        for (const r of res) {
          assert.equal(r.status, "stored");
          const set = keys.get(b.channel) ?? new Set<string>();
          set.add(`${r.item.message.senderId}/${r.item.message.clientMsgId}`);
          keys.set(b.channel, set);
        }
      }
      for (const [channel, set] of keys) {
        const seqs = store.seqsOf(channel);
        assert.deepEqual(
          seqs,
          Array.from({ length: set.size }, (_, i) => i + 1),
        );
      }
    }),
    { numRuns: 200 },
  );
});

test("sequenceBatch: one ordered insert for many channels; a failure in one channel re-plans the rest", async () => {
  const store = new MemorySequenceStore();
  const cache = new Map<string, number>();
  await sequenceBatch(store, [msg("b", "u", "old")], new Map()); // b already has seq 1
  let inserts = 0;
  const counting = {
    ...store,
    lastSeq: store.lastSeq.bind(store),
    findByClientMsgId: store.findByClientMsgId.bind(store),
    insertOrdered: (d: Parameters<typeof store.insertOrdered>[0]) => (inserts++, store.insertOrdered(d)),
  };
  const r = await sequenceBatch(
    counting,
    [msg("a", "u", "1"), msg("b", "u", "old"), msg("a", "u", "2"), msg("b", "v", "x"), msg("c", "u", "1")],
    cache,
  );
  assert.deepEqual(
    r.map((x) =>
      x.status === "stored" ? `${x.item.message.channelId}${x.message.seq}${x.duplicate ? "d" : ""}` : "!",
    ),
    ["a1", "b1d", "a2", "b2", "c1"],
  );
  assert.equal(inserts, 2, "one insert, plus one after the duplicate");
  assert.deepEqual(store.seqsOf("a"), [1, 2]);
  assert.deepEqual(store.seqsOf("b"), [1, 2]);
  const same = await sequenceBatch(store, [msg("a", "u", "1"), msg("b", "u", "1")], cache);
  assert.deepEqual(
    same.map((x) =>
      x.status === "stored" ? `${x.message.channelId}${x.message.seq}${x.duplicate ? "d" : ""}` : "!",
    ),
    ["a1d", "b3"],
    "the same clientMsgId in another channel is another message",
  );
});

test("property: mixed-channel batches from interleaved owners stay gap-free, one message per key", async () => {
  const arb = fc.array(
    fc.record({
      owner: fc.integer({ min: 0, max: 2 }),
      sends: fc.array(
        fc.record({
          channel: fc.constantFrom("a", "b", "c"),
          sender: fc.constantFrom("u", "v"),
          id: fc.integer({ min: 0, max: 12 }),
        }),
        { minLength: 1, maxLength: 10 },
      ),
    }),
    { minLength: 1, maxLength: 25 },
  );
  await fc.assert(
    fc.asyncProperty(arb, async (batches) => {
      const store = new MemorySequenceStore();
      const caches = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];
      const keys = new Map<string, Set<string>>();
      for (const b of batches) {
        const items = b.sends.map((s) => msg(s.channel, s.sender, `m${s.id}`));
        const res = await sequenceBatch(store, items, caches[b.owner] as Map<string, number>);
        for (const r of res) {
          assert.equal(r.status, "stored");
          if (r.status !== "stored") continue;
          assert.equal(r.message.channelId, r.item.message.channelId);
          assert.equal(r.message.clientMsgId, r.item.message.clientMsgId);
          const set = keys.get(r.message.channelId) ?? new Set<string>();
          set.add(`${r.message.senderId}/${r.message.clientMsgId}`);
          keys.set(r.message.channelId, set);
        }
      }
      for (const [channel, set] of keys) {
        assert.deepEqual(
          store.seqsOf(channel),
          Array.from({ length: set.size }, (_, i) => i + 1),
        );
      }
    }),
    { numRuns: 200 },
  );
});
