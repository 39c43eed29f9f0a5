/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection: every
 * `retryPeriodMs` a candidate tries to acquire or renew; a Lease held by another is taken only when
 * its record has not changed for `leaseDurationMs` as observed locally (no clock-skew assumptions); a
 * leader that cannot renew within `renewDeadlineMs` stops leading. Releasing on shutdown empties the
 * holder so a standby takes over at its next retry.
 */
import type { Logger } from "pino";

export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: Date;
  renewTime: Date;
  leaseTransitions: number;
}

/** Where the Lease lives: the API server (lease-store.ts) or memory in tests. */
export interface LeaseStore {
  get(): Promise<{ record: LeaseRecord; resourceVersion: string } | undefined>;
  create(record: LeaseRecord): Promise<void>;
  /** Replaces the record if `resourceVersion` is current; throws on conflict. */
  update(record: LeaseRecord, resourceVersion: string): Promise<void>;
}

export interface LeaderElectionOptions {
  store: LeaseStore;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log?: Logger;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });

export class LeaderElector {
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private observed: { key: string; at: number } | undefined;
  private leading = false;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly o: LeaderElectionOptions) {
    this.leaseMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryMs = o.retryPeriodMs ?? 2_000;
    if (!(this.leaseMs > this.renewDeadlineMs && this.renewDeadlineMs > this.retryMs)) {
      throw new Error("leader election needs leaseDuration > renewDeadline > retryPeriod");
    }
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops campaigning; a leader releases the Lease first. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    if (this.leading) {
      await this.release().catch((err: unknown) =>
        this.o.log?.warn({ err: String(err) }, "lease release failed"),
      );
      this.setLeading(false);
    }
  }

  private setLeading(v: boolean): void {
    if (this.leading === v) return;
    this.leading = v;
    this.o.log?.info({ identity: this.o.identity, leading: v }, v ? "became leader" : "stopped leading");
    if (v) this.o.onStartedLeading();
    else this.o.onStoppedLeading();
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let lastRenew = 0;
    while (!signal.aborted) {
      const ok = await this.tryAcquireOrRenew().catch((err: unknown) => {
        this.o.log?.debug({ err: String(err) }, "lease attempt failed");
        return false;
      });
      if (signal.aborted) return;
      const now = Date.now();
      if (ok) {
        lastRenew = now;
        this.setLeading(true);
      } else if (this.leading && now - lastRenew > this.renewDeadlineMs) {
        this.setLeading(false);
      }
      await sleep(this.retryMs, signal);
    }
  }

  private expired(record: LeaseRecord, now: number): boolean {
    const key = `${record.holderIdentity}|${new Date(record.renewTime).getTime()}|${record.leaseTransitions}`;
    if (this.observed?.key !== key) this.observed = { key, at: now };
    return now - this.observed.at > this.leaseMs;
  }

  async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const current = await this.o.store.get();
    const mine = (acquireTime: Date, transitions: number): LeaseRecord => ({
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.ceil(this.leaseMs / 1000),
      acquireTime,
      renewTime: now,
      leaseTransitions: transitions,
    });
    if (!current) {
      await this.o.store.create(mine(now, 0));
      return true;
    }
    const { record, resourceVersion } = current;
    const held = record.holderIdentity === this.o.identity;
    if (!held && record.holderIdentity !== "" && !this.expired(record, now.getTime())) return false;
    const next = held
      ? mine(new Date(record.acquireTime), record.leaseTransitions)
      : mine(now, record.leaseTransitions + 1);
    await this.o.store.update(next, resourceVersion);
    return true;
  }

  private async release(): Promise<void> {
    const current = await this.o.store.get();
    if (!current || current.record.holderIdentity !== this.o.identity) return;
    await this.o.store.update(
      { ...current.record, holderIdentity: "", leaseDurationSeconds: 1, renewTime: new Date() },
      current.resourceVersion,
    );
  }
}
