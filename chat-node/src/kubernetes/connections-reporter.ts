import * as k8s from "@kubernetes/client-node";
import type { Logger } from "../logger.js";
import { failingChecks, reportAnnotations, type Checks } from "./annotations.js";

/**
 * Keeps this pod's `vibetalk.io/connections` annotation at the live connection count, which the operator
 * sums for the HPA's external metric and the ChatCluster's status, and `vibetalk.io/readiness` at the
 * failing checks of its own /readyz (the operator never dials pods: this is how it learns that a backing
 * service is unreachable), and `controller.kubernetes.io/pod-deletion-cost` at the count, so that a
 * scale-in removes the emptiest pods. All in one merge patch, only when the count or the checks changed.
 */
export class ConnectionsReporter {
  private readonly core: k8s.CoreV1Api;
  private timer: NodeJS.Timeout | null = null;
  private reported: { connections: number; readiness: string | undefined } | null = null;
  private readonly readyzUrl: string;

  constructor(
    private readonly o: {
      kubeConfig: k8s.KubeConfig;
      namespace: string;
      podName: string;
      log: Logger;
      everyMs?: number;
      /** This process's own /readyz (default: the operations port on loopback, OPS_PORT or 9090). */
      readyzUrl?: string;
    },
    private readonly count: () => number,
  ) {
    this.core = o.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.readyzUrl = o.readyzUrl ?? `http://127.0.0.1:${process.env.OPS_PORT ?? "9090"}/readyz`;
  }

  /** The failing checks, or undefined when this process's /readyz did not answer (the annotation stays). */
  private async readiness(): Promise<string | undefined> {
    try {
      const res = await fetch(this.readyzUrl, { signal: AbortSignal.timeout(1500) });
      const body = (await res.json()) as { checks?: Checks };
      return body.checks ? failingChecks(body.checks) : undefined;
    } catch {
      return undefined;
    }
  }

  start(): void {
    const report = async (): Promise<void> => {
      const connections = this.count();
      const readiness = (await this.readiness()) ?? this.reported?.readiness;
      if (this.reported?.connections === connections && this.reported.readiness === readiness) return;
      const annotations = reportAnnotations(connections, readiness);
      await this.core.patchNamespacedPod(
        { name: this.o.podName, namespace: this.o.namespace, body: { metadata: { annotations } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
      this.reported = { connections, readiness };
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
