import * as k8s from "@kubernetes/client-node";
import {
  ASSIGNMENT_KEY,
  decodeAssignment,
  decodeReleaseRecord,
  encodeReleaseRecord,
  type PartitionAssignment,
} from "@vibetalk/protocol/cluster";
import type { Logger } from "../logger.js";
import type { AssignmentSource } from "../ports.js";
import { planOwnership } from "./ownership.js";

export interface KubernetesAssignmentOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  podName: string;
  partitionsConfigMap: string;
  releasesConfigMap: string;
  log: Logger;
  /** How often the assignment and release records are read (default 500 ms). */
  pollMs?: number;
  /** Every read of `<cluster>-partitions`: its data, for the balance round it also carries (BALANCE_KEY). */
  onPartitionsData?: (data: Record<string, string>) => void;
}

const isStatus = (err: unknown, code: number): boolean => (err as { code?: number }).code === code;

/**
 * Partition ownership from the operator: reads `<cluster>-partitions`, and hands partitions over through the
 * release records in `<cluster>-releases`. A partition is consumed only after this pod's claim is written
 * with optimistic concurrency over a record that was free (never held, released, or ours); a lost partition
 * is released only after its consumer stopped and acked its in-flight batch. So two pods never consume one
 * partition at once (I6), whatever the timing of the assignment's changes.
 */
export class KubernetesAssignmentSource implements AssignmentSource {
  private readonly core: k8s.CoreV1Api;
  private consuming = new Set<number>();
  private onChange: ((owned: Set<number>) => Promise<void>) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private tick: Promise<void> = Promise.resolve();
  private stopped = false;
  private lastEpoch = -1;

  constructor(private readonly o: KubernetesAssignmentOptions) {
    this.core = o.kubeConfig.makeApiClient(k8s.CoreV1Api);
  }

  async start(onChange: (owned: Set<number>) => Promise<void>): Promise<void> {
    this.onChange = onChange;
    await this.sync().catch((err: unknown) =>
      this.o.log.warn(
        { event: "assignment.sync_failed", err: String(err) },
        "first assignment read failed; retrying",
      ),
    );
    const loop = (): void => {
      if (this.stopped) return;
      this.tick = this.sync()
        .catch((err: unknown) =>
          this.o.log.warn(
            { event: "assignment.sync_failed", err: String(err) },
            "assignment sync failed; retrying",
          ),
        )
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, this.o.pollMs ?? 500);
        });
    };
    this.timer = setTimeout(loop, this.o.pollMs ?? 500);
  }

  /** Drain: stop every consumer (in-flight batches acked), then release every partition held. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.tick;
    const held = [...this.consuming];
    this.consuming = new Set();
    await this.onChange?.(new Set());
    if (held.length > 0)
      await this.writeReleases(held, this.lastEpoch).catch((err: unknown) =>
        this.o.log.error(
          { event: "assignment.release_failed", err: String(err) },
          "could not record releases; the operator frees them when this pod is gone",
        ),
      );
  }

  private async readAssignment(): Promise<PartitionAssignment | undefined> {
    try {
      const cm = await this.core.readNamespacedConfigMap({
        name: this.o.partitionsConfigMap,
        namespace: this.o.namespace,
      });
      this.o.onPartitionsData?.(cm.data ?? {});
      return decodeAssignment(cm.data?.[ASSIGNMENT_KEY]);
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }

  private async sync(): Promise<void> {
    const assignment = await this.readAssignment();
    const releases = await this.core.readNamespacedConfigMap({
      name: this.o.releasesConfigMap,
      namespace: this.o.namespace,
    });
    if (this.stopped) return;
    const epoch = assignment?.epoch ?? 0;
    const plan = planOwnership(this.o.podName, this.consuming, assignment, releases.data ?? {});
    if (plan.stop.length > 0) {
      for (const k of plan.stop) this.consuming.delete(k);
      await this.onChange?.(new Set(this.consuming));
    }
    const released = [...plan.stop, ...plan.release];
    if (released.length > 0) {
      await this.writeReleases(released, epoch);
      this.o.log.info({ event: "partitions.released", partitions: released, epoch }, "released partitions");
    }
    if (plan.claim.length > 0) {
      const claimed = await this.writeClaims(plan.claim, epoch, releases);
      if (claimed.length > 0) {
        for (const k of claimed) this.consuming.add(k);
        await this.onChange?.(new Set(this.consuming));
        this.o.log.info({ event: "partitions.claimed", partitions: claimed, epoch }, "claimed partitions");
      }
    }
    if (epoch !== this.lastEpoch) {
      this.o.log.info(
        { event: "assignment.epoch", epoch, consuming: this.consuming.size, waiting: plan.waiting },
        "assignment epoch seen",
      );
      this.lastEpoch = epoch;
    }
  }

  /** Claims the partitions still free in `releases`; a conflicting write (409) claims nothing this round. */
  private async writeClaims(
    partitions: number[],
    epoch: number,
    releases: k8s.V1ConfigMap,
  ): Promise<number[]> {
    const data = { ...(releases.data ?? {}) };
    const at = new Date().toISOString();
    const claimed: number[] = [];
    for (const k of partitions) {
      const holder = decodeReleaseRecord(data[String(k)])?.holder;
      if (holder !== undefined && holder !== "" && holder !== this.o.podName) continue;
      data[String(k)] = encodeReleaseRecord({ holder: this.o.podName, epoch, at });
      claimed.push(k);
    }
    try {
      await this.core.replaceNamespacedConfigMap({
        name: this.o.releasesConfigMap,
        namespace: this.o.namespace,
        body: { ...releases, data },
      });
      return claimed;
    } catch (err) {
      if (isStatus(err, 409)) return [];
      throw err;
    }
  }

  /** Marks partitions this pod held as released, retrying on write conflicts. */
  private async writeReleases(partitions: number[], epoch: number): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const cm = await this.core.readNamespacedConfigMap({
        name: this.o.releasesConfigMap,
        namespace: this.o.namespace,
      });
      const data = { ...(cm.data ?? {}) };
      const at = new Date().toISOString();
      for (const k of partitions) {
        const holder = decodeReleaseRecord(data[String(k)])?.holder;
        if (holder === undefined || holder === this.o.podName) {
          data[String(k)] = encodeReleaseRecord({ holder: "", epoch, releasedBy: this.o.podName, at });
        }
      }
      try {
        await this.core.replaceNamespacedConfigMap({
          name: this.o.releasesConfigMap,
          namespace: this.o.namespace,
          body: { ...cm, data },
        });
        return;
      } catch (err) {
        if (!isStatus(err, 409)) throw err;
      }
    }
    throw new Error(`releases of ${partitions.join(",")} kept conflicting`);
  }
}
