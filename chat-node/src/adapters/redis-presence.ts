import type { Redis } from "ioredis";
import { redisCall } from "./redis-errors.js";
import type { PresenceState, PresenceStore } from "../ports.js";

/**
 * Presence in Redis. Each user has a hash `vt:presence:<userId>` whose fields are node ids and
 * values the time (ms) until which that node vouches for the user; the key itself expires after
 * the TTL. A node refreshes all the users it holds every heartbeat (one pipeline), so a user is
 * online while any node's field is in the future, and offline at most TTL after the last node
 * holding them died. `vt:lastseen:<userId>` keeps when their last socket went. `vt:online` is a
 * sorted set of every online user scored by the time they are vouched for until, so counting who
 * is online (the official group's `onlineCount`) is one ZCOUNT, never a scan of users.
 */
const ONLINE_KEY = "vt:online";

export class RedisPresence implements PresenceStore {
  constructor(
    private readonly redis: Redis,
    private readonly nodeId: string,
    private readonly ttlMs: number,
  ) {}

  private key(userId: string): string {
    return `vt:presence:${userId}`;
  }

  async heartbeat(userIds: readonly string[]): Promise<string[]> {
    return redisCall(async () => {
      if (userIds.length === 0) return [];
      const now = Date.now();
      const until = String(now + this.ttlMs);
      const read = this.redis.pipeline();
      for (const u of userIds) read.hgetall(this.key(u));
      const before = (await read.exec()) ?? [];
      const write = this.redis.pipeline();
      for (const u of userIds) {
        write.hset(this.key(u), this.nodeId, until);
        write.pexpire(this.key(u), this.ttlMs);
      }
      // GT: another node vouching for longer keeps its score; expired entries go with each heartbeat.
      write.zadd(ONLINE_KEY, "GT", ...userIds.flatMap((u) => [until, u]));
      write.zremrangebyscore(ONLINE_KEY, "-inf", now);
      await write.exec();
      const cameOnline: string[] = [];
      userIds.forEach((u, i) => {
        const fields = (before[i]?.[1] ?? {}) as Record<string, string>;
        if (!isLive(fields, now)) cameOnline.push(u);
      });
      return cameOnline;
    });
  }

  async leave(userId: string, at: Date): Promise<PresenceState> {
    return redisCall(async () => {
      const key = this.key(userId);
      const r = await this.redis.multi().hdel(key, this.nodeId).hgetall(key).exec();
      const fields = (r?.[1]?.[1] ?? {}) as Record<string, string>;
      if (isLive(fields, Date.now())) {
        // Still held elsewhere: vouched for until the latest of the other nodes' times.
        const until = Math.max(...Object.values(fields).map(Number));
        await this.redis.zadd(ONLINE_KEY, "XX", until, userId);
        return { userId, online: true, lastSeenAt: null };
      }
      await this.redis.zrem(ONLINE_KEY, userId);
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
      return userIds.map((userId, i) => {
        const fields = (r[2 * i]?.[1] ?? {}) as Record<string, string>;
        const seen = r[2 * i + 1]?.[1];
        const online = isLive(fields, now);
        return {
          userId,
          online,
          lastSeenAt: !online && typeof seen === "string" ? new Date(Number(seen)) : null,
        };
      });
    });
  }

  async onlineCount(): Promise<number> {
    return redisCall(async () => this.redis.zcount(ONLINE_KEY, `(${Date.now()}`, "+inf"));
  }

  async ping(): Promise<boolean> {
    try {
      return this.redis.status === "ready" && (await this.redis.ping()) === "PONG";
    } catch {
      return false;
    }
  }
}

function isLive(fields: Record<string, string>, now: number): boolean {
  return Object.values(fields).some((v) => Number(v) > now);
}
