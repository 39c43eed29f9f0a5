import type { Redis } from "ioredis";
import { redisCall } from "./redis-errors.js";
import type { SessionRevocations } from "../ports.js";

/**
 * Ended sessions in Redis: `vt:revoked:<tokenId>` for a logged-out token and
 * `vt:sessions-from:<userId>` (ms) before which a user's sessions are over, each expiring when no
 * token it covers can still be valid. One MGET per check. Redis must keep its data across restarts
 * (the bitnami chart's AOF does) or revoked tokens would be accepted again until they expire
 * (docs/security.md).
 */
export class RedisRevocations implements SessionRevocations {
  constructor(private readonly redis: Redis) {}

  async revokeToken(tokenId: string, untilMs: number): Promise<void> {
    return redisCall(async () => {
      const ttl = Math.max(1, untilMs - Date.now());
      await this.redis.set(`vt:revoked:${tokenId}`, "1", "PX", ttl);
    });
  }

  async revokeUser(userId: string, atMs: number, untilMs: number): Promise<void> {
    return redisCall(async () => {
      const ttl = Math.max(1, untilMs - Date.now());
      // Never move the cut-off back: a later revocation wins over an earlier one that arrives late.
      await this.redis.eval(
        "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') " +
          "if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end return 1",
        1,
        `vt:sessions-from:${userId}`,
        String(atMs),
        String(ttl),
      );
    });
  }

  async isRevoked(s: { userId: string; tokenId: string; issuedAtMs: number }): Promise<boolean> {
    return redisCall(async () => {
      const [token, from] = await this.redis.mget(`vt:revoked:${s.tokenId}`, `vt:sessions-from:${s.userId}`);
      if (token) return true;
      return from !== null && from !== undefined && s.issuedAtMs < Number(from);
    });
  }
}
