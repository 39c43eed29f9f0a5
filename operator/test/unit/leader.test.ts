import assert from "node:assert/strict";
import { test } from "node:test";
import { LeaderElector, type LeaseRecord, type LeaseStore } from "../../src/controller/leader.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class MemoryLease implements LeaseStore {
  record: LeaseRecord | undefined;
  rv = 0;
  down = false;
  async get() {
    if (this.down) throw new Error("unavailable");
    return this.record
      ? { record: structuredClone(this.record), resourceVersion: String(this.rv) }
      : undefined;
  }
  async create(r: LeaseRecord) {
    if (this.down) throw new Error("unavailable");
    if (this.record) throw Object.assign(new Error("exists"), { code: 409 });
    this.record = structuredClone(r);
    this.rv++;
  }
  async update(r: LeaseRecord, rv: string) {
    if (this.down) throw new Error("unavailable");
    if (rv !== String(this.rv)) throw Object.assign(new Error("conflict"), { code: 409 });
    this.record = structuredClone(r);
    this.rv++;
  }
}

const timing = { leaseDurationMs: 300, renewDeadlineMs: 200, retryPeriodMs: 40 };

function candidate(store: LeaseStore, identity: string) {
  const log: string[] = [];
  const e = new LeaderElector({
    store,
    identity,
    ...timing,
    onStartedLeading: () => log.push("start"),
    onStoppedLeading: () => log.push("stop"),
  });
  return { e, log };
}

test("one of two candidates leads; the other takes over after the lease expires", async () => {
  const store = new MemoryLease();
  const a = candidate(store, "a");
  const b = candidate(store, "b");
  a.e.start();
  await sleep(20);
  b.e.start();
  await sleep(150);
  assert.equal(a.e.isLeader(), true);
  assert.equal(b.e.isLeader(), false);
  assert.equal(store.record?.holderIdentity, "a");
  // a dies without releasing: stop its loop but keep the record
  const frozen = structuredClone(store.record);
  await a.e.stop();
  store.record = frozen;
  store.rv++;
  const t0 = Date.now();
  while (!b.e.isLeader() && Date.now() - t0 < 2000) await sleep(10);
  const took = Date.now() - t0;
  assert.equal(b.e.isLeader(), true);
  assert.ok(took >= timing.leaseDurationMs - 50, `took over after ${took} ms, not before the lease expired`);
  assert.equal(store.record?.holderIdentity, "b");
  assert.equal(store.record?.leaseTransitions, 1);
  await b.e.stop();
});

test("a graceful stop releases the Lease so the standby takes over at its next retry", async () => {
  const store = new MemoryLease();
  const a = candidate(store, "a");
  const b = candidate(store, "b");
  a.e.start();
  await sleep(30);
  b.e.start();
  await sleep(60);
  const t0 = Date.now();
  await a.e.stop();
  assert.equal(store.record?.holderIdentity, "");
  while (!b.e.isLeader() && Date.now() - t0 < 2000) await sleep(5);
  assert.ok(Date.now() - t0 < timing.leaseDurationMs, "faster than a lease expiry");
  assert.deepEqual(a.log, ["start", "stop"]);
  await b.e.stop();
});

test("a leader that cannot renew within the deadline stops leading", async () => {
  const store = new MemoryLease();
  const a = candidate(store, "a");
  a.e.start();
  await sleep(60);
  assert.equal(a.e.isLeader(), true);
  store.down = true;
  await sleep(timing.renewDeadlineMs + 3 * timing.retryPeriodMs);
  assert.equal(a.e.isLeader(), false);
  assert.deepEqual(a.log, ["start", "stop"]);
  await a.e.stop();
});

test("timings must satisfy lease > renew deadline > retry", () => {
  assert.throws(
    () =>
      new LeaderElector({
        store: new MemoryLease(),
        identity: "x",
        leaseDurationMs: 10,
        renewDeadlineMs: 20,
        retryPeriodMs: 1,
        onStartedLeading: () => undefined,
        onStoppedLeading: () => undefined,
      }),
    /leaseDuration > renewDeadline > retryPeriod/,
  );
});
