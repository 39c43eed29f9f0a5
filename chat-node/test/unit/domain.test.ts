import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { fnv1a32, partitionOf, userExchangeOf } from "../../src/domain/hashing.js";
import { directChannelId, directChannelUsers, messageId } from "../../src/domain/ids.js";
import { diffPartitions, formatPartitionSet, parsePartitionSet } from "../../src/domain/partitions.js";
import { KeyedRateLimiter, TokenBucket } from "../../src/domain/rate-limiter.js";
import { planFanOut, recipientsOf, topology, userBinding } from "../../src/domain/fanout.js";
import { chunk, ReceiptCoalescer, unreadCount } from "../../src/domain/receipts.js";
import {
  compareChannelsByActivity,
  decodeChannelCursor,
  encodeChannelCursor,
  isAfterCursor,
} from "../../src/domain/cursor.js";
import { previewOf } from "../../src/domain/messages.js";
import { backoffMs, classifyFailure, describeFailure, type FailureKind } from "../../src/domain/failures.js";

test("FNV-1a matches reference vectors and partitions are stable and in range", () => {
  assert.equal(fnv1a32(""), 0x811c9dc5);
  assert.equal(fnv1a32("a"), 0xe40c292c);
  assert.equal(fnv1a32("foobar"), 0xbf9cf968);
  fc.assert(
    fc.property(fc.string(), fc.integer({ min: 1, max: 4096 }), (s, p) => {
      const k = partitionOf(s, p);
      return k >= 0 && k < p && k === partitionOf(s, p) && Number.isInteger(k);
    }),
  );
  assert.equal(userExchangeOf("aaaaaaaaaaaaaaaaaaaaaaaa", 16), fnv1a32("aaaaaaaaaaaaaaaaaaaaaaaa") % 16);
});

test("partitions spread channels evenly enough", () => {
  const counts = new Array<number>(64).fill(0);
  for (let i = 0; i < 64_000; i++) {
    const k = partitionOf(i.toString(16).padStart(24, "0"), 64);
    counts[k] = (counts[k] ?? 0) + 1;
  }
  assert.ok(Math.min(...counts) > 800 && Math.max(...counts) < 1200, counts.join(","));
});

test("message ids are the channel plus a 12-digit seq and sort by seq", () => {
  assert.equal(messageId("ch", 42), "ch:000000000042");
  assert.throws(() => messageId("ch", 0.5));
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1e12 - 1 }), fc.integer({ min: 0, max: 1e12 - 1 }), (a, b) => {
      return Math.sign(a - b) === Math.sign(messageId("c", a).localeCompare(messageId("c", b), "en"));
    }),
  );
});

test("direct channel ids are the sorted pair", () => {
  const a = "a".repeat(24);
  const b = "b".repeat(24);
  assert.equal(directChannelId(a, b), directChannelId(b, a));
  assert.deepEqual(directChannelUsers(directChannelId(b, a)), [a, b]);
  assert.equal(directChannelUsers("0123456789abcdef01234567"), null);
});

test("partition sets parse, format and diff", () => {
  assert.equal(parsePartitionSet("all", 4).size, 4);
  assert.equal(parsePartitionSet("none", 4).size, 0);
  assert.deepEqual([...parsePartitionSet("0-2, 5,7-7", 8)], [0, 1, 2, 5, 7]);
  assert.throws(() => parsePartitionSet("8", 8), /not below 8/);
  assert.throws(() => parsePartitionSet("3-1", 8), /reversed/);
  assert.throws(() => parsePartitionSet("x", 8), /not a partition/);
  assert.equal(formatPartitionSet([5, 0, 1, 2, 7]), "0-2,5,7");
  assert.deepEqual(diffPartitions(new Set([0, 1, 2]), new Set([2, 3])), { start: [3], stop: [0, 1] });
});

test("token bucket: burst then rate", () => {
  const b = new TokenBucket(20, 40, 0);
  let ok = 0;
  for (let i = 0; i < 100; i++) if (b.tryTake(0)) ok++;
  assert.equal(ok, 40);
  assert.equal(b.tryTake(49), false);
  assert.equal(b.tryTake(50), true); // 1 token after 50 ms at 20/s
  let later = 0;
  for (let i = 0; i < 100; i++) if (b.tryTake(1050)) later++;
  assert.equal(later, 20);
  const k = new KeyedRateLimiter(1, 2);
  assert.equal(k.tryTake("a", 0) && k.tryTake("a", 0), true);
  assert.equal(k.tryTake("a", 0), false);
  assert.equal(k.tryTake("b", 0), true);
});

test("fan-out plan: one publish with CC for ordinary channels, chunks for huge ones", () => {
  assert.deepEqual(planFanOut(["c", "a", "b", "a"], 500), [{ routingKey: "a", cc: ["b", "c"] }]);
  const many = Array.from({ length: 1001 }, (_, i) => `u${String(i).padStart(4, "0")}`);
  const plan = planFanOut(many, 500);
  assert.deepEqual(
    plan.map((p) => p.cc.length + 1),
    [500, 500, 1],
  );
  assert.deepEqual(planFanOut([], 10), []);
  assert.deepEqual(recipientsOf("a", ["b", 3, "c"]), ["a", "b", "c"]);
  assert.deepEqual(recipientsOf("a", undefined), ["a"]);
  const bnd = userBinding("aaaaaaaaaaaaaaaaaaaaaaaa", 16);
  assert.equal(bnd.exchange, topology.userExchange(userExchangeOf("aaaaaaaaaaaaaaaaaaaaaaaa", 16)));
  assert.equal(topology.partitionQueue(3), "vibetalk.partition.3");
});

test("receipt coalescer raises marks and flushes each member at most once per interval", () => {
  const c = new ReceiptCoalescer(1000);
  assert.equal(c.record("ch", "u", "delivered", 5), true);
  assert.equal(c.record("ch", "u", "delivered", 3), false);
  assert.equal(c.record("ch", "u", "read", 4), true);
  assert.deepEqual(c.takeDue(0), [{ channelId: "ch", userId: "u", lastDeliveredSeq: 5, lastReadSeq: 4 }]);
  assert.equal(c.record("ch", "u", "read", 9), true);
  assert.deepEqual(c.takeDue(500), [], "not twice within the interval");
  assert.deepEqual(c.takeDue(1000), [{ channelId: "ch", userId: "u", lastDeliveredSeq: 9, lastReadSeq: 9 }]);
  assert.deepEqual(c.takeDue(5000), []);
  c.record("ch", "v", "read", 2);
  c.record("ch2", "v", "delivered", 1);
  assert.equal(c.takeUser("v", 5000).length, 2);
  c.restore([{ channelId: "x", userId: "w", lastDeliveredSeq: 3, lastReadSeq: 1 }]);
  assert.deepEqual(c.takeAll(6000), [{ channelId: "x", userId: "w", lastDeliveredSeq: 3, lastReadSeq: 1 }]);
  c.prune(100_000, 1000);
  assert.equal(c.size, 0);
  assert.deepEqual(
    chunk([1, 2, 3, 4, 5], 2).map((x) => x.length),
    [2, 2, 1],
  );
  assert.equal(unreadCount(3, 5), 0);
  assert.equal(unreadCount(7, 5), 2);
});

test("channel cursors round-trip and order the recent-chats list", () => {
  const cur = { at: 1_700_000_000_123, id: "abc" };
  assert.deepEqual(decodeChannelCursor(encodeChannelCursor(cur)), cur);
  assert.equal(decodeChannelCursor("!!!"), null);
  assert.equal(decodeChannelCursor(Buffer.from('{"a":1}').toString("base64url")), null);
  const chans = [
    { id: "a", lastMessageAt: new Date(1) },
    { id: "c", lastMessageAt: new Date(3) },
    { id: "b", lastMessageAt: new Date(3) },
  ];
  const sorted = [...chans].sort(compareChannelsByActivity).map((c) => c.id);
  assert.deepEqual(sorted, ["c", "b", "a"]);
  assert.equal(isAfterCursor({ id: "b", lastMessageAt: new Date(3) }, { at: 3, id: "c" }), true);
  assert.equal(isAfterCursor({ id: "c", lastMessageAt: new Date(3) }, { at: 3, id: "c" }), false);
});

test("previews are cut by characters", () => {
  assert.equal(previewOf("short"), "short");
  const long = "😀".repeat(200);
  assert.equal(Array.from(previewOf(long)).length, 120);
});

test("store and broker failures are classified: transient, permanent (the document), unknown", () => {
  const err = (name: string, message: string, extra: Record<string, unknown> = {}) =>
    Object.assign(new Error(message), { name, ...extra });
  const cases: Array<[unknown, FailureKind]> = [
    [err("MongoServerSelectionError", "connect ECONNREFUSED 127.0.0.1:27017"), "transient"],
    [err("MongoNetworkError", "connection 3 closed"), "transient"],
    [err("MongoNotConnectedError", "not connected"), "transient"],
    [err("MongoPoolClearedError", "pool cleared"), "transient"],
    [err("StoreUnavailableError", "the store is unavailable"), "transient"],
    [err("BrokerUnavailableError", "publish not confirmed within 5000 ms"), "transient"],
    [err("SeqConflictError", "seq conflict persisted on channel c"), "transient"],
    [err("MongoServerError", "interrupted at shutdown", { code: 11600 }), "transient"],
    [err("MongoServerError", "x", { errorLabels: ["RetryableWriteError"] }), "transient"],
    [
      err("MongoServerError", "ERROR: failed to connect to PostgreSQL: dial tcp: connection refused", {
        code: 1,
      }),
      "transient",
    ],
    [err("MongoServerError", "ERROR: terminating connection (SQLSTATE 57P01)", { code: 1 }), "transient"],
    // FerretDB 1.24 on PostgreSQL 15 for a U+0000 in a string (measured):
    [
      err(
        "MongoBulkWriteError",
        "[msg_insert.go:168 handler.(*Handler).MsgInsert] [collection.go:163 postgresql.(*collection).InsertAll.func1] ERROR: unsupported Unicode escape sequence (SQLSTATE 22P05)",
        { code: 1 },
      ),
      "permanent",
    ],
    [err("MongoServerError", "document too large", { code: 10334 }), "permanent"],
    [err("MongoServerError", "Document failed validation", { code: 121 }), "permanent"],
    [err("BSONError", "cannot serialize"), "permanent"],
    [err("RangeError", 'The value of "offset" is out of range.', { code: "ERR_OUT_OF_RANGE" }), "permanent"],
    [err("Error", "weird"), "unknown"],
    [err("Error", "wrapped", { cause: err("MongoNetworkError", "gone") }), "transient"],
    ["a string", "unknown"],
    [null, "unknown"],
  ];
  for (const [e, kind] of cases) assert.equal(classifyFailure(e), kind, describeFailure(e));
});

test("backoff doubles from the base up to the cap, with bounded jitter", () => {
  assert.equal(
    backoffMs(0, 100, 3000, () => 0.5),
    100,
  );
  assert.equal(
    backoffMs(3, 100, 3000, () => 0.5),
    800,
  );
  assert.equal(
    backoffMs(10, 100, 3000, () => 0.5),
    3000,
  );
  assert.equal(
    backoffMs(1000, 100, 3000, () => 0.5),
    3000,
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 100 }), fc.double({ min: 0, max: 1, noNaN: true }), (n, r) => {
      const v = backoffMs(n, 100, 3000, () => r);
      return v >= 80 && v <= 3600;
    }),
  );
});
