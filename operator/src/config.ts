/**
 * Operator configuration: every option, its environment variable and its default, parsed and
 * validated once at start-up. A bad value throws a ConfigError naming the variable.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { z } from "zod";
import { DEFAULT_CHAT_NODE_IMAGE } from "./version.js";

export interface OperatorConfig {
  /** Namespace to watch (WATCH_NAMESPACE); undefined = all namespaces. */
  watchNamespace: string | undefined;
  /** /healthz, /readyz, /metrics (METRICS_HOST 0.0.0.0, METRICS_PORT 8080; 0 picks a free port). */
  metricsHost: string;
  metricsPort: number;
  /** external.metrics.k8s.io over HTTPS (EXTERNAL_METRICS_PORT 6443; 0 picks a free port). */
  externalMetricsPort: number;
  /** Serve the external metrics API at all (EXTERNAL_METRICS_ENABLED, true). */
  externalMetricsEnabled: boolean;
  /**
   * Client CA for the aggregator's certificate (EXTERNAL_METRICS_CLIENT_CA): `auto` reads
   * kube-system/extension-apiserver-authentication, `none` turns client auth off, else a PEM file path.
   */
  externalMetricsClientCa: string;
  /** Leader election on a Lease (LEADER_ELECT, true). */
  leaderElect: boolean;
  /** LEASE_NAMESPACE (default POD_NAMESPACE, else vibetalk-system), LEASE_NAME (vibetalk-operator). */
  leaseNamespace: string;
  leaseName: string;
  /** LEASE_DURATION_SECONDS 15, LEASE_RENEW_DEADLINE_SECONDS 10, LEASE_RETRY_PERIOD_SECONDS 2. */
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** This instance's identity (POD_NAME, else hostname_random). */
  identity: string;
  /** Every ChatCluster is reconciled at least this often (RESYNC_SECONDS, 60). */
  resyncMs: number;
  /** Keys reconciled in parallel (WORKERS, 4). */
  workers: number;
  /** pino level (LOG_LEVEL, info). */
  logLevel: string;
  /**
   * The chat-node image of a ChatCluster without spec.image (CHAT_NODE_IMAGE, default the chat-node of
   * the operator's own version, localhost/vibetalk/chat-node:<version>).
   */
  chatNodeImage: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

const port = z.coerce.number().int().min(0).max(65535);
const seconds = z.coerce.number().positive().max(3600);
const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const dns = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS-1123 label")
  .max(63);

const envSchema = z.object({
  WATCH_NAMESPACE: dns.optional(),
  METRICS_HOST: z.string().min(1).default("0.0.0.0"),
  METRICS_PORT: port.default(8080),
  EXTERNAL_METRICS_PORT: port.default(6443),
  EXTERNAL_METRICS_ENABLED: bool.default(true),
  EXTERNAL_METRICS_CLIENT_CA: z.string().min(1).default("auto"),
  LEADER_ELECT: bool.default(true),
  POD_NAMESPACE: dns.optional(),
  POD_NAME: z.string().min(1).max(253).optional(),
  LEASE_NAMESPACE: dns.optional(),
  LEASE_NAME: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be a DNS-1123 subdomain")
    .default("vibetalk-operator"),
  LEASE_DURATION_SECONDS: seconds.default(15),
  LEASE_RENEW_DEADLINE_SECONDS: seconds.default(10),
  LEASE_RETRY_PERIOD_SECONDS: seconds.default(2),
  RESYNC_SECONDS: seconds.default(60),
  WORKERS: z.coerce.number().int().min(1).max(64).default(4),
  CHAT_NODE_IMAGE: z
    .string()
    .regex(/^[^\s]{1,1024}$/, "must be an image reference")
    .default(DEFAULT_CHAT_NODE_IMAGE),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

/** The names of every environment variable the operator reads (plus KUBECONFIG, read by client-node). */
export const CONFIG_ENV_VARS = ["KUBECONFIG", ...Object.keys(envSchema.shape)];

export function loadConfig(env: Record<string, string | undefined>): OperatorConfig {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const r = envSchema.safeParse(cleaned);
  if (!r.success)
    throw new ConfigError(r.error.issues.map((i) => `${i.path.join(".") || "env"}: ${i.message}`));
  const e = r.data;
  const problems: string[] = [];
  if (!(
    e.LEASE_DURATION_SECONDS > e.LEASE_RENEW_DEADLINE_SECONDS &&
    e.LEASE_RENEW_DEADLINE_SECONDS > e.LEASE_RETRY_PERIOD_SECONDS
  )) {
    problems.push(
      "LEASE_DURATION_SECONDS, LEASE_RENEW_DEADLINE_SECONDS, LEASE_RETRY_PERIOD_SECONDS: need duration > renew deadline > retry period",
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    watchNamespace: e.WATCH_NAMESPACE,
    metricsHost: e.METRICS_HOST,
    metricsPort: e.METRICS_PORT,
    externalMetricsPort: e.EXTERNAL_METRICS_PORT,
    externalMetricsEnabled: e.EXTERNAL_METRICS_ENABLED,
    externalMetricsClientCa: e.EXTERNAL_METRICS_CLIENT_CA,
    leaderElect: e.LEADER_ELECT,
    leaseNamespace: e.LEASE_NAMESPACE ?? e.POD_NAMESPACE ?? "vibetalk-system",
    leaseName: e.LEASE_NAME,
    leaseDurationMs: e.LEASE_DURATION_SECONDS * 1000,
    renewDeadlineMs: e.LEASE_RENEW_DEADLINE_SECONDS * 1000,
    retryPeriodMs: e.LEASE_RETRY_PERIOD_SECONDS * 1000,
    identity: e.POD_NAME ?? `${hostname()}_${randomUUID().slice(0, 8)}`,
    resyncMs: e.RESYNC_SECONDS * 1000,
    workers: e.WORKERS,
    logLevel: e.LOG_LEVEL,
    chatNodeImage: e.CHAT_NODE_IMAGE,
  };
}
