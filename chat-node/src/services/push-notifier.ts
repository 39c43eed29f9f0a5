/**
 * Push notifications off the partition's critical path (docs/chat-node.md, "Push notifications"):
 * the owner hands each stored batch to `notify`, which only queues it (bounded; a full queue drops
 * the batch and counts it). A worker picks who to notify (domain/push.ts), takes the interval key,
 * and delivers to the push gateway and by Web Push with retries and backoff; a notification that
 * keeps failing ends in the dead-letter: a `push.dead_letter` log line with its error and
 * `vibetalk_push_failed_total`.
 */
import webpush from "web-push";
import type { PushConfig } from "../config.js";
import {
  gatewayRequest,
  offlineUsers,
  pushCandidates,
  retryDelayMs,
  throttleKey,
  webPushPayload,
  type PushContent,
} from "../domain/push.js";
import type { StoredMessage } from "../domain/messages.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type {
  MemberRecord,
  MemberStore,
  PresenceStore,
  PushDeviceRecord,
  PushDeviceStore,
  PushThrottle,
  UserStore,
} from "../ports.js";
import type { ChannelEntry } from "./members-cache.js";

/** Batches waiting for the worker at most; more are dropped (counted). */
export const PUSH_QUEUE_MAX = 1000;
/** A gateway or Web Push request that has not answered by then counts as failed (and is retried). */
export const PUSH_REQUEST_TIMEOUT_MS = 5000;

export interface PushNotifierDeps {
  config: PushConfig;
  store: Pick<UserStore, "getUsers"> & Pick<MemberStore, "getMember"> & PushDeviceStore;
  members: { get(channelId: string): Promise<ChannelEntry | null> };
  presence: Pick<PresenceStore, "get">;
  throttle: PushThrottle;
  metrics: Pick<Metrics, "pushSent" | "pushFailed" | "pushDropped">;
  log: Logger;
}

/** A delivery refused for good: no retry (a 4xx other than 429, a Web Push 404/410). */
class PermanentPushError extends Error {}

export class PushNotifier {
  private readonly queue: StoredMessage[][] = [];
  private running: Promise<void> | null = null;
  private readonly deliveries = new Set<Promise<void>>();
  private readonly timers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  private stopped = false;

  constructor(private readonly d: PushNotifierDeps) {}

  /** True when a gateway or Web Push is configured. */
  get enabled(): boolean {
    return this.d.config.gatewayUrl !== undefined || this.d.config.vapid !== undefined;
  }

  /** Queues a stored batch; never waits and never throws (the partition's consumer calls it). */
  notify(messages: readonly StoredMessage[]): void {
    if (!this.enabled || this.stopped) return;
    const plain = messages.filter((m) => m.kind === undefined);
    if (plain.length === 0) return;
    if (this.queue.length >= PUSH_QUEUE_MAX) {
      this.d.metrics.pushDropped.inc();
      return;
    }
    this.queue.push(plain);
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
  }

  /** Resolves once the queue is empty and every delivery (retries included) has ended. */
  async idle(): Promise<void> {
    while (this.running || this.deliveries.size > 0) {
      await Promise.all([this.running, ...this.deliveries]);
    }
  }

  /** Stops: queued batches are dropped, retries waiting end now (their notification is given up). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.length = 0;
    for (const t of this.timers) {
      clearTimeout(t.timer);
      t.wake();
    }
    await this.idle();
  }

  private async drain(): Promise<void> {
    for (let batch = this.queue.shift(); batch; batch = this.queue.shift()) {
      try {
        await this.process(batch);
      } catch (err) {
        this.d.log.warn({ event: "push.batch_failed", err }, "push notifications of a batch skipped");
      }
    }
  }

  /** Who a batch may notify, before presence, mute and the interval are checked. */
  private async candidates(
    batch: readonly StoredMessage[],
  ): Promise<Array<{ message: StoredMessage; userId: string }>> {
    const wanted: Array<{ message: StoredMessage; userId: string }> = [];
    for (const message of batch) {
      const entry = await this.d.members.get(message.channelId);
      if (!entry) continue;
      if (entry.large) {
        // A large channel notifies the members it mentions only (each read again after), never all of them.
        if (message.kind !== undefined) continue;
        for (const u of new Set(message.mentions ?? []))
          if (u !== message.senderId) wanted.push({ message, userId: u });
        continue;
      }
      for (const m of pushCandidates(message, [...entry.members.values()]))
        wanted.push({ message, userId: m.userId });
    }
    return wanted;
  }

  /**
   * Who a batch notifies, then their deliveries (not awaited: the next batch does not wait for them).
   * The cached members narrow the candidates; the offline ones are read again from the store (one
   * read per member and channel, in parallel), so a mute set on another node and the unread count are exact.
   */
  private async process(batch: readonly StoredMessage[]): Promise<void> {
    const wanted = await this.candidates(batch);
    if (wanted.length === 0) return;
    const users = [...new Set(wanted.map((w) => w.userId))];
    const offline = new Set(offlineUsers(users, await this.d.presence.get(users)));
    const ttlMs = this.d.config.minIntervalSeconds * 1000;
    const due: Array<{ message: StoredMessage; userId: string; unread: number }> = [];
    const away = wanted.filter((x) => offline.has(x.userId));
    // One read per member of a channel, however many of the batch's messages are for them.
    const reads = new Map<string, Promise<MemberRecord | null>>();
    for (const w of away) {
      const key = throttleKey(w.userId, w.message.channelId);
      if (!reads.has(key)) reads.set(key, this.d.store.getMember(w.message.channelId, w.userId));
    }
    const fresh = new Map(await Promise.all([...reads].map(async ([k, p]) => [k, await p] as const)));
    for (const w of away) {
      const key = throttleKey(w.userId, w.message.channelId);
      const m = fresh.get(key);
      // Read before the interval is taken: a mute the cache missed must not use up the interval.
      if (!m || pushCandidates(w.message, [m]).length === 0) continue;
      if (ttlMs > 0 && !(await this.d.throttle.acquire(key, ttlMs))) continue;
      due.push({ ...w, unread: Math.max(1, w.message.seq - m.lastReadSeq) });
    }
    if (due.length === 0) return;
    const devices = await this.d.store.pushDevicesOf([...new Set(due.map((w) => w.userId))]);
    const senders = await this.d.store.getUsers([...new Set(due.map((w) => w.message.senderId))]);
    const names = new Map(senders.map((u) => [u.id, u.displayName]));
    for (const w of due) {
      const content: PushContent = {
        message: w.message,
        senderName: names.get(w.message.senderId) ?? "",
        unread: w.unread,
      };
      const mine = devices.filter((x) => x.userId === w.userId);
      const gateway = mine.filter((x) => x.kind === "gateway");
      if (gateway.length > 0 && this.d.config.gatewayUrl !== undefined)
        this.track("gateway", content, () => this.sendGateway(content, gateway));
      if (this.d.config.vapid !== undefined)
        for (const device of mine.filter((x) => x.kind === "webpush"))
          this.track("webpush", content, () => this.sendWebPush(content, device));
    }
  }

  private track(kind: "gateway" | "webpush", c: PushContent, send: () => Promise<void>): void {
    const p = this.withRetries(kind, c, send).finally(() => this.deliveries.delete(p));
    this.deliveries.add(p);
  }

  /** Up to PUSH_MAX_ATTEMPTS attempts with exponential backoff, then the dead-letter. */
  private async withRetries(
    kind: "gateway" | "webpush",
    c: PushContent,
    send: () => Promise<void>,
  ): Promise<void> {
    const max = this.d.config.maxAttempts;
    for (let attempt = 1; ; attempt++) {
      try {
        await send();
        this.d.metrics.pushSent.inc({ kind });
        return;
      } catch (err) {
        const permanent = err instanceof PermanentPushError;
        if (permanent || attempt >= max || this.stopped) {
          this.d.metrics.pushFailed.inc({ kind });
          this.d.log.warn(
            {
              event: "push.dead_letter",
              kind,
              channelId: c.message.channelId,
              seq: c.message.seq,
              attempts: attempt,
              error: err instanceof Error ? err.message : String(err),
            },
            "push notification given up",
          );
          return;
        }
        await this.sleep(retryDelayMs(attempt, this.d.config.retryBaseMs, Math.random()));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = {
        timer: setTimeout(() => {
          this.timers.delete(t);
          resolve();
        }, ms),
        wake: resolve,
      };
      this.timers.add(t);
    });
  }

  /** One POST for all of a user's gateway devices; keys the gateway rejects are removed. */
  private async sendGateway(c: PushContent, devices: readonly PushDeviceRecord[]): Promise<void> {
    const res = await fetch(this.d.config.gatewayUrl as string, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(gatewayRequest(c, devices)),
      signal: AbortSignal.timeout(PUSH_REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    if (!res.ok) {
      const msg = `gateway answered ${res.status}`;
      throw res.status >= 400 && res.status < 500 && res.status !== 429
        ? new PermanentPushError(msg)
        : new Error(msg);
    }
    const rejected = rejectedKeys(text);
    for (const d of devices)
      if (d.kind === "gateway" && rejected.has(d.pushKey))
        await this.d.store.removePushDevice(d.userId, d.id);
  }

  /** One Web Push message; a subscription the push service no longer knows (404, 410) is removed. */
  private async sendWebPush(c: PushContent, d: PushDeviceRecord): Promise<void> {
    if (d.kind !== "webpush") return;
    const vapid = this.d.config.vapid;
    if (!vapid) return;
    // web-push builds the request (VAPID JWT, aes128gcm encryption); the node sends it itself, with
    // the same timeout as the gateway's and over http too for a loopback test endpoint (decision 60).
    const req = webpush.generateRequestDetails(
      { endpoint: d.endpoint, keys: { p256dh: d.p256dh, auth: d.auth } },
      webPushPayload(c),
      { vapidDetails: vapid, TTL: 3600 },
    );
    const res = await fetch(req.endpoint, {
      method: req.method,
      headers: req.headers as Record<string, string>,
      body: req.body ? new Uint8Array(req.body) : null,
      signal: AbortSignal.timeout(PUSH_REQUEST_TIMEOUT_MS),
    });
    await res.arrayBuffer();
    if (res.ok) return;
    if (res.status === 404 || res.status === 410) {
      await this.d.store.removePushDevice(d.userId, d.id);
      throw new PermanentPushError(`push service answered ${res.status}: subscription removed`);
    }
    const msg = `push service answered ${res.status}`;
    throw isPermanent(res.status) ? new PermanentPushError(msg) : new Error(msg);
  }
}

/** A 4xx other than 429 will not change by retrying. */
const isPermanent = (status: number): boolean => status >= 400 && status < 500 && status !== 429;

/** The gateway's `rejected` pushkeys, from its JSON answer (none when it has no such list). */
function rejectedKeys(text: string): Set<string> {
  try {
    const body = JSON.parse(text) as { rejected?: unknown };
    return new Set(Array.isArray(body.rejected) ? body.rejected.filter((k) => typeof k === "string") : []);
  } catch {
    return new Set();
  }
}
