import type { Redis } from "ioredis";
import { redisCall } from "./redis-errors.js";
import type { PresenceState, PresenceStore } from "../ports.js";

/** A user's presence hash outlives its last write by this long (a node renews it once a day). */
const USER_KEY_TTL_MS = 30 * 86_400_000;
/** How often a node writes every user it holds again, so their keys never reach USER_KEY_TTL_MS. */
const REJOIN_EVERY_MS = 86_400_000;
/** Users per pipeline when a node joins many at once. */
const BATCH = 1000;
/** The set of node ids that have held users (dead ones are removed by the next count). */
const NODES_KEY = "vt:nodes";

/**
 * Presence in Redis as one lease per node (docs/chat-node.md#presence). `vt:node:<nodeId>` exists
 * while the node is alive: it is set with the TTL and renewed every heartbeat, one command whatever
 * the node holds. Each user has a hash `vt:presence:<userId>` whose fields name the nodes holding
 * them (value: when the node joined them), written when their first socket arrives on a node and
 * removed when the last one goes; a user is online while any of those nodes' leases is live, and
 * offline at most TTL after the last node holding them died. `vt:lastseen:<userId>` keeps when their
 * last socket went.
 *
 * Each node also keeps the set `vt:node-users:<nodeId>` of the users it holds (same joins and leaves,
 * the lease's TTL) and names itself in `vt:nodes`, so counting who is online (the official group's
 * `onlineCount`) is one SUNIONSTORE over the live nodes' sets, never a scan of users.
 *
 * Fields written before presence moved to node leases held "live until" times; a field whose value is
 * still in the future counts as live, so presence reads stay right while a rollout replaces the old
 * chat-nodes (docs/upgrades.md).
 */
export class RedisPresence implements PresenceStore {
  private lastFullJoin = Date.now();

  constructor(
    private readonly redis: Redis,
    private readonly nodeId: string,
    private readonly ttlMs: number,
  ) {}

  private key(userId: string): string {
    return `vt:presence:${userId}`;
  }

  private lease(nodeId: string): string {
    return `vt:node:${nodeId}`;
  }

  private held(nodeId: string): string {
    return `vt:node-users:${nodeId}`;
  }

  async join(userIds: readonly string[]): Promise<string[]> {
    return redisCall(() => this.joinAll(userIds));
  }

  /** `lapsed`: this node's lease had lapsed before (a renewal found it gone), whatever Redis says now. */
  private async joinAll(userIds: readonly string[], lapsed = false): Promise<string[]> {
    const cameOnline: string[] = [];
    for (let i = 0; i < userIds.length; i += BATCH)
      cameOnline.push(...(await this.joinBatch(userIds.slice(i, i + BATCH), lapsed)));
    return cameOnline;
  }

  private async joinBatch(userIds: readonly string[], lapsed: boolean): Promise<string[]> {
    if (userIds.length === 0) return [];
    const now = Date.now();
    // Renews this node's lease too; whether it was live says if this node vouched for them before.
    const read = this.redis.pipeline().set(this.lease(this.nodeId), "1", "PX", this.ttlMs, "GET");
    for (const u of userIds) read.hgetall(this.key(u));
    const [lease, ...hashes] = (await read.exec()) ?? [];
    const before = hashes.map((r) => (r?.[1] ?? {}) as Record<string, string>);
    const live = await this.liveNodes(before, now);
    if (lapsed || lease?.[1] === null) live.delete(this.nodeId);
    const write = this.redis.pipeline();
    const cameOnline: string[] = [];
    userIds.forEach((u, i) => {
      const fields = before[i] ?? {};
      if (!isLive(fields, live, now)) cameOnline.push(u);
      const dead = Object.entries(fields)
        .filter(([n, v]) => n !== this.nodeId && !vouches(n, v, live, now))
        .map(([n]) => n);
      if (dead.length > 0) write.hdel(this.key(u), ...dead);
      write.hset(this.key(u), this.nodeId, String(now));
      write.pexpire(this.key(u), USER_KEY_TTL_MS);
    });
    write.sadd(this.held(this.nodeId), ...userIds).pexpire(this.held(this.nodeId), this.ttlMs);
    write.sadd(NODES_KEY, this.nodeId);
    await write.exec();
    return cameOnline;
  }

  async renew(held: () => readonly string[]): Promise<string[]> {
    return redisCall(async () => {
      const r = await this.redis
        .pipeline()
        .set(this.lease(this.nodeId), "1", "PX", this.ttlMs, "GET")
        .pexpire(this.held(this.nodeId), this.ttlMs)
        .exec();
      const lapsed = r?.[0]?.[1] === null;
      if (!lapsed && Date.now() - this.lastFullJoin < REJOIN_EVERY_MS) return [];
      this.lastFullJoin = Date.now();
      const cameOnline = await this.joinAll(held(), lapsed);
      // The daily rewrite of a live lease's users keeps their keys; none of them came online by it.
      return lapsed ? cameOnline : [];
    });
  }

  async leave(userId: string, at: Date): Promise<PresenceState> {
    return redisCall(async () => {
      const key = this.key(userId);
      const r = await this.redis
        .multi()
        .hdel(key, this.nodeId)
        .hgetall(key)
        .srem(this.held(this.nodeId), userId)
        .exec();
      const fields = (r?.[1]?.[1] ?? {}) as Record<string, string>;
      const now = Date.now();
      if (isLive(fields, await this.liveNodes([fields], now), now))
        return { userId, online: true, lastSeenAt: null };
      await this.redis.set(`vt:lastseen:${userId}`, String(at.getTime()), "EX", 30 * 86400);
      return { userId, online: false, lastSeenAt: at };
    });
  }

  async get(userIds: readonly string[]): Promise<PresenceState[]> {
    return redisCall(async () => {
      if (userIds.length === 0) return [];
      const p = this.redis.pipeline();
      for (const u of userIds) {
        p.hgetall(this.key(u));
        p.get(`vt:lastseen:${u}`);
      }
      const r = (await p.exec()) ?? [];
      const now = Date.now();
      const fieldsOf = userIds.map((_, i) => (r[2 * i]?.[1] ?? {}) as Record<string, string>);
      const live = await this.liveNodes(fieldsOf, now);
      return userIds.map((userId, i) => {
        const seen = r[2 * i + 1]?.[1];
        const online = isLive(fieldsOf[i] ?? {}, live, now);
        return {
          userId,
          online,
          lastSeenAt: !online && typeof seen === "string" ? new Date(Number(seen)) : null,
        };
      });
    });
  }

  /** Of the nodes these hashes name, those whose lease is live: one MGET of the distinct ones. */
  private async liveNodes(hashes: readonly Record<string, string>[], now: number): Promise<Set<string>> {
    const nodes = new Set<string>();
    for (const h of hashes) for (const [n, v] of Object.entries(h)) if (!(Number(v) > now)) nodes.add(n);
    if (nodes.size === 0) return new Set();
    const names = [...nodes];
    const leases = await this.redis.mget(names.map((n) => this.lease(n)));
    return new Set(names.filter((_, i) => leases[i] !== null));
  }

  async onlineCount(): Promise<number> {
    return redisCall(async () => {
      const nodes = await this.redis.smembers(NODES_KEY);
      if (nodes.length === 0) return 0;
      const leases = await this.redis.mget(nodes.map((n) => this.lease(n)));
      const live = nodes.filter((_, i) => leases[i] !== null);
      const dead = nodes.filter((_, i) => leases[i] === null);
      if (dead.length > 0) await this.redis.srem(NODES_KEY, ...dead);
      if (live.length === 0) return 0;
      // A user held by two nodes counts once: the union's size (into a key of this node's, removed).
      const tmp = `vt:online-count:${this.nodeId}`;
      const r = await this.redis
        .multi()
        .sunionstore(tmp, ...live.map((n) => this.held(n)))
        .del(tmp)
        .exec();
      return Number(r?.[0]?.[1] ?? 0);
    });
  }

  async ping(): Promise<boolean> {
    try {
      return this.redis.status === "ready" && (await this.redis.ping()) === "PONG";
    } catch {
      return false;
    }
  }
}

/** Whether any node of the hash vouches: its lease is live, or an old-style field's time is ahead. */
function isLive(fields: Record<string, string>, live: Set<string>, now: number): boolean {
  return Object.entries(fields).some(([n, v]) => vouches(n, v, live, now));
}

/** Whether one field's node vouches: its lease is live, or an old-style value's time is ahead. */
function vouches(node: string, value: string, live: Set<string>, now: number): boolean {
  return live.has(node) || Number(value) > now;
}
