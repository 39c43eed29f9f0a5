// PushThrottle in memory: keys that lapse after their TTL, as RedisPushThrottle's `SET NX PX` keys do.
import type { PushThrottle } from "../../../src/ports.js";

export class MemoryPushThrottle implements PushThrottle {
  private readonly until = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  async acquire(key: string, ttlMs: number): Promise<boolean> {
    const t = this.now();
    if ((this.until.get(key) ?? 0) > t) return false;
    this.until.set(key, t + ttlMs);
    return true;
  }
}
