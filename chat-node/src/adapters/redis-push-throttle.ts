import type { Redis } from "ioredis";
import { redisCall } from "./redis-errors.js";
import type { PushThrottle } from "../ports.js";

/** `vt:push:<key>`, set with `SET NX PX`: the first node to set it within the interval notifies. */
export class RedisPushThrottle implements PushThrottle {
  constructor(private readonly redis: Redis) {}

  async acquire(key: string, ttlMs: number): Promise<boolean> {
    return redisCall(async () => (await this.redis.set(`vt:push:${key}`, "1", "PX", ttlMs, "NX")) === "OK");
  }
}
