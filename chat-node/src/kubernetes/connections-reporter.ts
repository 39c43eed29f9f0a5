import * as k8s from "@kubernetes/client-node";
import { ANNOTATION_CONNECTIONS } from "@vibetalk/protocol/cluster";
import type { Logger } from "../logger.js";

/**
 * Keeps this pod's `vibetalk.io/connections` annotation at the live connection count, which the operator
 * sums for the HPA's external metric and the ChatCluster's status. Patches only when the count changed.
 */
export class ConnectionsReporter {
  private readonly core: k8s.CoreV1Api;
  private timer: NodeJS.Timeout | null = null;
  private reported: number | null = null;

  constructor(
    private readonly o: {
      kubeConfig: k8s.KubeConfig;
      namespace: string;
      podName: string;
      log: Logger;
      everyMs?: number;
    },
    private readonly count: () => number,
  ) {
    this.core = o.kubeConfig.makeApiClient(k8s.CoreV1Api);
  }

  start(): void {
    const report = async (): Promise<void> => {
      const n = this.count();
      if (n === this.reported) return;
      await this.core.patchNamespacedPod(
        {
          name: this.o.podName,
          namespace: this.o.namespace,
          body: { metadata: { annotations: { [ANNOTATION_CONNECTIONS]: String(n) } } },
        },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
      this.reported = n;
    };
    const loop = (): void => {
      void report()
        .catch((err: unknown) =>
          this.o.log.warn({ event: "connections.report_failed", err: String(err) }, "could not annotate pod"),
        )
        .finally(() => {
          if (this.timer) this.timer = setTimeout(loop, this.o.everyMs ?? 2000);
        });
    };
    this.timer = setTimeout(loop, 0);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
