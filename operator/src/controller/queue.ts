/**
 * A per-key work queue, as client-go's: a key is queued at most once (adds coalesce), never handled
 * by two workers at once (an add during handling re-queues it afterwards), and a failing key is retried
 * with exponential backoff. Delayed adds keep the earliest deadline.
 */

export interface WorkQueueOptions {
  /** First retry delay after a failure (default 200 ms); doubles per consecutive failure. */
  baseDelayMs?: number;
  /** Retry delay cap (default 60 s). */
  maxDelayMs?: number;
  /** Keys handled in parallel, each key still one at a time (default 4). */
  concurrency?: number;
  /** Called whenever the number of waiting keys changes. */
  onDepth?: (depth: number) => void;
  /** Called when a handler fails (after the retry is scheduled). */
  onError?: (key: string, err: unknown, retryInMs: number) => void;
}

export type Handler = (key: string) => Promise<{ requeueAfterMs?: number } | void>;

export class WorkQueue {
  private readonly waiting = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private readonly inFlight = new Set<Promise<void>>();
  private handler: Handler | undefined;
  private stopped = false;
  private readonly base: number;
  private readonly max: number;
  private readonly concurrency: number;

  constructor(private readonly options: WorkQueueOptions = {}) {
    this.base = options.baseDelayMs ?? 200;
    this.max = options.maxDelayMs ?? 60_000;
    this.concurrency = options.concurrency ?? 4;
  }

  get depth(): number {
    return this.waiting.size;
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.waiting.has(key)) return;
    this.waiting.add(key);
    this.options.onDepth?.(this.waiting.size);
    this.pump();
  }

  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref?.();
    this.timers.set(key, { at, timer });
  }

  /** Delay of the next retry for a key that failed `failures` times in a row. */
  backoff(failures: number): number {
    return Math.min(this.max, this.base * 2 ** Math.max(0, failures - 1));
  }

  start(handler: Handler): void {
    this.handler = handler;
    this.stopped = false;
    this.pump();
  }

  /** Stops taking keys and waits for handlers in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.waiting.clear();
    this.options.onDepth?.(0);
    await Promise.allSettled([...this.inFlight]);
  }

  private pump(): void {
    if (!this.handler || this.stopped) return;
    while (this.processing.size < this.concurrency) {
      const key = [...this.waiting].find((k) => !this.processing.has(k));
      if (key === undefined) return;
      this.waiting.delete(key);
      this.options.onDepth?.(this.waiting.size);
      this.processing.add(key);
      const run = this.run(key, this.handler).finally(() => this.inFlight.delete(run));
      this.inFlight.add(run);
    }
  }

  private async run(key: string, handler: Handler): Promise<void> {
    try {
      const out = await handler(key);
      this.failures.delete(key);
      if (out?.requeueAfterMs !== undefined) this.addAfter(key, out.requeueAfterMs);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = this.backoff(n);
      this.addAfter(key, delay);
      this.options.onError?.(key, err, delay);
    } finally {
      this.processing.delete(key);
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
