import { setTimeout as sleep } from "node:timers/promises";
import type { PartitionAssignment } from "@vibetalk/protocol/cluster";
import type { VibeTalkCluster } from "./cluster.js";
import { partitionConsumers, readAssignment } from "./partitions.js";

/**
 * Watches a cluster's partitions in the background (I6): the consumers on every partition queue, sampled
 * from RabbitMQ's management API every 100 ms, and every assignment the operator publishes. `phase` labels
 * the samples, so a test can allow an overlap where one is expected (a force-deleted pod).
 */
export class PartitionMonitor {
  /** Two active consumers on one partition queue: a breach of I6 whatever the phase. */
  readonly violations: string[] = [];
  /** Two consumers registered on one partition queue (one of them waiting, by single-active-consumer). */
  readonly overlaps: { phase: string; what: string }[] = [];
  readonly assignments: PartitionAssignment[] = [];
  phase = "start";
  samples = 0;
  private running = true;
  private readonly loop: Promise<void>;

  constructor(private readonly c: VibeTalkCluster) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const consumers = await partitionConsumers(this.c.rabbit.managementUrl!);
        this.samples += 1;
        const at = new Date().toISOString();
        for (const [queue, n] of consumers) {
          if (n.active > 1) this.violations.push(`${at} ${queue}: ${n.active} active consumers`);
          if (n.total > 1)
            this.overlaps.push({ phase: this.phase, what: `${at} ${queue}: ${n.total} consumers` });
        }
        const a = await readAssignment(this.c);
        if (a && a.epoch !== this.assignments.at(-1)?.epoch) this.assignments.push(a);
      } catch {
        /* management API busy: next sample */
      }
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}
