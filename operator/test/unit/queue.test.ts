import assert from "node:assert/strict";
import { test } from "node:test";
import { WorkQueue } from "../../src/controller/queue.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("adds of a waiting key coalesce into one run", async () => {
  const runs: string[] = [];
  const q = new WorkQueue();
  for (let i = 0; i < 5; i++) q.add("a");
  q.add("b");
  assert.equal(q.depth, 2);
  q.start(async (k) => void runs.push(k));
  await sleep(20);
  assert.deepEqual(runs.sort(), ["a", "b"]);
  await q.stop();
});

test("a key is never handled twice at once; an add during handling re-runs it afterwards", async () => {
  let active = 0;
  let maxActive = 0;
  let runs = 0;
  const q = new WorkQueue({ concurrency: 4 });
  q.start(async () => {
    active++;
    maxActive = Math.max(maxActive, active);
    runs++;
    await sleep(30);
    active--;
  });
  q.add("a");
  await sleep(5);
  q.add("a");
  q.add("a");
  await sleep(100);
  assert.equal(maxActive, 1);
  assert.equal(runs, 2, "one run, then one more for the adds that came during it");
  await q.stop();
});

test("different keys run in parallel up to the concurrency", async () => {
  let active = 0;
  let maxActive = 0;
  const q = new WorkQueue({ concurrency: 2 });
  q.start(async () => {
    active++;
    maxActive = Math.max(maxActive, active);
    await sleep(20);
    active--;
  });
  for (const k of ["a", "b", "c", "d"]) q.add(k);
  await sleep(80);
  assert.equal(maxActive, 2);
  await q.stop();
});

test("failures retry with exponential backoff; success resets it", async () => {
  const times: number[] = [];
  const errors: number[] = [];
  const q = new WorkQueue({
    baseDelayMs: 20,
    maxDelayMs: 1000,
    onError: (_k, _e, delay) => errors.push(delay),
  });
  let n = 0;
  q.start(async () => {
    times.push(Date.now());
    if (++n <= 3) throw new Error("boom");
  });
  q.add("a");
  await sleep(250);
  assert.deepEqual(errors, [20, 40, 80]);
  assert.equal(times.length, 4);
  const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
  assert.ok((gaps[0] ?? 0) >= 15 && (gaps[2] ?? 0) >= 70, `gaps ${gaps.join(",")}`);
  assert.equal(q.backoff(20), 1000, "capped");
  await q.stop();
});

test("requeueAfter schedules another run; the earliest delayed add wins", async () => {
  let runs = 0;
  const q = new WorkQueue();
  q.start(async () => {
    runs++;
    return runs === 1 ? { requeueAfterMs: 30 } : undefined;
  });
  q.add("a");
  await sleep(10);
  assert.equal(runs, 1);
  await sleep(50);
  assert.equal(runs, 2);
  q.addAfter("b", 1000);
  q.addAfter("b", 10);
  await sleep(40);
  assert.equal(runs, 3);
  await q.stop();
});

test("stop waits for handlers in flight and ignores later adds", async () => {
  let finished = false;
  const q = new WorkQueue();
  q.start(async () => {
    await sleep(30);
    finished = true;
  });
  q.add("a");
  await sleep(5);
  await q.stop();
  assert.equal(finished, true);
  q.add("b");
  assert.equal(q.depth, 0);
});
