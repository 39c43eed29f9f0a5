import type { Redis } from "ioredis";
import { redisCall } from "./redis-errors.js";
import type { MembershipVersions } from "../ports.js";

/** `vt:members-v:<channelId>`, an INCR per membership change, kept 30 days after the last one. */
export class RedisMembershipVersions implements MembershipVersions {
  constructor(private readonly redis: Redis) {}

  async get(channelId: string): Promise<number> {
    return redisCall(async () => {
      return Number((await this.redis.get(`vt:members-v:${channelId}`)) ?? 0);
    });
  }

  async bump(channelId: string): Promise<void> {
    return redisCall(async () => {
      const key = `vt:members-v:${channelId}`;
      await this.redis
        .multi()
        .incr(key)
        .expire(key, 30 * 86_400)
        .exec();
    });
  }
}
