/** A token bucket: `ratePerSecond` tokens refill continuously up to `burst`. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes one token if there is one; `now` in milliseconds. */
  tryTake(now: number): boolean {
    if (!this.available(now)) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether a token is there, without taking it. */
  available(now: number): boolean {
    const elapsed = Math.max(0, now - this.last) / 1000;
    this.last = Math.max(this.last, now);
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.ratePerSecond);
    return this.tokens >= 1;
  }
}

/** Token buckets by key (e.g. per client IP), forgetting idle keys. */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly maxKeys = 100_000,
  ) {}

  tryTake(key: string, now: number): boolean {
    return this.bucket(key, now).tryTake(now);
  }

  /** Whether `key` has a token left, without taking it (an unknown key has its full burst). */
  available(key: string, now: number): boolean {
    return this.buckets.get(key)?.available(now) ?? true;
  }

  private bucket(key: string, now: number): TokenBucket {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.buckets.clear();
      b = new TokenBucket(this.ratePerSecond, this.burst, now);
      this.buckets.set(key, b);
    }
    return b;
  }
}
