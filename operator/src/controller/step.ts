/**
 * What every reconcile step (./reconcile-*.ts) works with, and how a step fails. The steps are plain
 * functions of these dependencies and the ChatCluster; ./reconcile.ts runs them in order.
 */
import type { Logger } from "pino";
import type { ChatCluster } from "../api/v1alpha1.js";
import type { OperatorMetrics } from "../metrics.js";
import type { Problem } from "../status.js";
import type { ClusterApi, Clock, EventRecorder } from "./ports.js";

export interface StepDeps {
  api: ClusterApi;
  events: EventRecorder;
  metrics: OperatorMetrics;
  log: Logger;
  clock: Clock;
}

/** A failed step: the status shows it, then the error propagates so the queue backs off. */
export class StepError extends Error {
  constructor(
    readonly problem: Problem,
    override readonly cause: unknown,
  ) {
    super(problem.message);
  }
}

/** `namespace/name`, the work queue's key and the metrics' `cluster` label. */
export const clusterKey = (c: ChatCluster): string => `${c.metadata.namespace}/${c.metadata.name}`;
