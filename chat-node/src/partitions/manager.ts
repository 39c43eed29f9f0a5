import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { diffPartitions, formatPartitionSet } from "../domain/partitions.js";
import type { Broker } from "../ports.js";
import { PartitionConsumer, type PartitionConsumerDeps, type PartitionConsumerOptions } from "./consumer.js";

/**
 * Starts and stops partition consumers as ownership changes. Changes are applied one at a time,
 * in order; `apply` resolves once removed partitions are released and new ones are consuming.
 */
export class PartitionManager {
  private readonly consumers = new Map<number, PartitionConsumer>();
  private chain: Promise<void> = Promise.resolve();
  private lagTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly deps: PartitionConsumerDeps & { broker: Broker; metrics: Metrics; log: Logger },
    private readonly opts: PartitionConsumerOptions,
  ) {}

  apply(owned: ReadonlySet<number>): Promise<void> {
    const next = this.chain.then(() => this.applyNow(new Set(owned)));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async applyNow(owned: Set<number>): Promise<void> {
    const { start, stop } = diffPartitions(new Set(this.consumers.keys()), owned);
    if (start.length === 0 && stop.length === 0) return;
    this.deps.log.info(
      { event: "partitions.change", start: formatPartitionSet(start), stop: formatPartitionSet(stop) },
      "partition ownership changes",
    );
    await Promise.all(
      stop.map(async (k) => {
        const c = this.consumers.get(k);
        this.consumers.delete(k);
        this.deps.metrics.partitionLag.remove({ partition: String(k) });
        await c?.stop();
      }),
    );
    await Promise.all(
      start.map(async (k) => {
        const c = new PartitionConsumer(k, this.deps, this.opts);
        this.consumers.set(k, c);
        await c.start();
      }),
    );
    this.deps.metrics.ownedPartitions.set(this.consumers.size);
  }

  owned(): number[] {
    return [...this.consumers.keys()].sort((a, b) => a - b);
  }

  /** Samples the queue depth of owned partitions and of the parked queue every `everyMs`. */
  startLagSampling(everyMs: number): void {
    const sample = async () => {
      try {
        this.deps.metrics.parkedMessages.set(await this.deps.broker.parkedDepth());
      } catch {
        // broker down: readiness reports it
      }
      for (const k of this.consumers.keys()) {
        try {
          this.deps.metrics.partitionLag.set(
            { partition: String(k) },
            await this.deps.broker.partitionDepth(k),
          );
        } catch {
          // broker down: readiness reports it
        }
      }
    };
    this.lagTimer = setInterval(() => void sample(), everyMs);
    this.lagTimer.unref();
  }

  async stopAll(): Promise<void> {
    if (this.lagTimer) clearInterval(this.lagTimer);
    await this.apply(new Set());
  }
}
