import { isIP } from "node:net";
import { hostname } from "node:os";
import { fileURLToPath } from "node:url";
import { DEFAULT_LIMITS, type Limits, type PostingPolicy } from "@vibetalk/protocol";
import { z } from "zod";
import { parsePartitionSet } from "./domain/partitions.js";
import { jwtSecretProblem } from "./services/auth.js";

/**
 * chat-node configuration: every option, its environment variable and its default, in one place.
 * `loadConfig(process.env)` parses and validates once at start-up; a bad value throws a
 * `ConfigError` naming the variable (main.ts prints it and exits 1).
 */
export interface ChatNodeConfig {
  /** HTTP + Socket.IO port (PORT, 8080; 0 picks a free one). */
  port: number;
  /** Listen address (HOST, 0.0.0.0). */
  host: string;
  /** Operations port: /healthz, /readyz, /metrics, /internal/* (OPS_PORT, 9090; 0 picks a free one). */
  opsPort: number;
  /** Operations listen address (OPS_HOST, else HOST). */
  opsHost: string;
  /** This node's identity: queue names, logs, metrics (NODE_ID, else POD_NAME, else the hostname). */
  nodeId: string;
  redisUrl: string;
  rabbitmqUrl: string;
  mongodbUrl: string;
  /** HS256 secret for session tokens (JWT_SECRET, at least 32 bytes, never the example's). */
  jwtSecret: string;
  /** The secret before the last rotation, still accepted for verifying (JWT_PREVIOUS_SECRET, unset). */
  jwtPreviousSecret: string | undefined;
  /**
   * Proxies whose X-Forwarded-For is believed (TRUST_PROXY: comma-separated addresses or CIDRs,
   * e.g. the ingress's; none by default, so the client address is the TCP peer's).
   */
  trustProxy: string[];
  /** Token lifetime (JWT_TTL_SECONDS, 7 days). */
  jwtTtlSeconds: number;
  /** Number of partitions P (PARTITIONS, 64); fixed for a cluster's life. */
  partitions: number;
  /** Number of user exchanges U (USER_EXCHANGES, 16); fixed for a cluster's life. */
  userExchanges: number;
  /** Partition ownership source (PARTITION_ASSIGNMENT, `static`). */
  assignment: "static" | "kubernetes";
  /**
   * With PARTITION_ASSIGNMENT=kubernetes: where the operator's assignment and the release records live
   * (POD_NAME, POD_NAMESPACE and CLUSTER_NAME required; PARTITIONS_CONFIGMAP `<cluster>-partitions`,
   * RELEASES_CONFIGMAP `<cluster>-releases`, ASSIGNMENT_POLL_MS 500, CONNECTIONS_REPORT_MS 2000).
   */
  kubernetes: KubernetesConfig | undefined;
  /** Statically owned partitions (OWNED_PARTITIONS, `all`): `all`, `none` or e.g. `0-31,40`. */
  ownedPartitions: Set<number>;
  /** Unacked messages per partition consumer (CONSUMER_PREFETCH, 500). */
  consumerPrefetch: number;
  /** Messages stored per batch at most (BATCH_SIZE, 200). */
  batchSize: number;
  /** Store a full waiting batch while the previous batch's fan-out confirms (CONSUMER_PIPELINE, 1). */
  consumerPipeline: boolean;
  /** How long a partial batch waits for more messages (FLUSH_INTERVAL_MS, 0: next tick; see docs/performance.md). */
  flushIntervalMs: number;
  /** A publish the broker has not confirmed by then answers UNAVAILABLE (PUBLISH_TIMEOUT_MS, 5000). */
  publishTimeoutMs: number;
  /** Server selection and connect timeout of store requests (STORE_TIMEOUT_MS, 2000). */
  storeTimeoutMs: number;
  /** Store attempts of a message failing for an unknown reason before it is parked (MAX_STORE_ATTEMPTS, 5). */
  maxStoreAttempts: number;
  /** Longest wait between in-process retries of a transient failure (RETRY_MAX_DELAY_MS, 3000). */
  retryMaxDelayMs: number;
  /** Grace period for a SIGTERM drain (DRAIN_SECONDS, 25). */
  drainSeconds: number;
  /** A user's binding is kept this long after their last socket here goes (BINDING_GRACE_SECONDS, 60). */
  bindingGraceSeconds: number;
  /** AMQP channels that bindings are spread over (BIND_CHANNELS, 4). */
  bindChannels: number;
  /** A node queue unused this long is deleted by RabbitMQ (NODE_QUEUE_EXPIRES_SECONDS, 60). */
  nodeQueueExpiresSeconds: number;
  /** Presence heartbeat period (PRESENCE_HEARTBEAT_SECONDS, 5). */
  presenceHeartbeatSeconds: number;
  /** Offline after this long without a heartbeat (PRESENCE_TTL_SECONDS, 25). */
  presenceTtlSeconds: number;
  /** Receipt marks are written at most once per member per interval (RECEIPT_FLUSH_MS, 1000). */
  receiptFlushMs: number;
  /** A large channel's receipt counts go to the sender at most once per interval (RECEIPT_COUNTS_INTERVAL_MS, 5000). */
  receiptCountsIntervalMs: number;
  /** Cached channel members expire after (MEMBERS_CACHE_TTL_MS, 60000). */
  membersCacheTtlMs: number;
  /** Routing keys per fan-out publish at most (FANOUT_MAX_CC, 500). */
  fanoutMaxRecipients: number;
  /**
   * A group with at least this many members is a large channel, delivered by channel bindings
   * (LARGE_CHANNEL_MEMBERS, 100; docs/chat-node.md, "Large channels"). The official group always is.
   */
  largeChannelMembers: number;
  /** How long after a group becomes large its messages switch to the channel route (LARGE_CHANNEL_SWITCH_MS, 3000). */
  largeChannelSwitchMs: number;
  /** Protocol limits (LIMIT_* variables; defaults in @vibetalk/protocol). */
  limits: Limits;
  /** Content types accepted for uploads (FILE_TYPES, comma-separated). */
  fileTypes: string[];
  /** pino level (LOG_LEVEL, info). */
  logLevel: string;
  /** OTLP/HTTP endpoint; tracing is off without one (OTEL_EXPORTER_OTLP_ENDPOINT). */
  otelEndpoint: string | undefined;
  /** Service name of traces (OTEL_SERVICE_NAME, vibetalk-chat-node). */
  otelServiceName: string;
  /** Static web client directory (PUBLIC_DIR, chat-node/public). */
  publicDir: string;
  /** The pod's name for log lines (POD_NAME, unset off Kubernetes). */
  pod: string | undefined;
  /** Socket.IO transports accepted (SOCKET_TRANSPORTS, `polling,websocket`; polling clients upgrade). */
  transports: Array<"polling" | "websocket">;
  /** Engine.IO ping interval and timeout (SOCKET_PING_INTERVAL_MS 25000, SOCKET_PING_TIMEOUT_MS 20000). */
  pingIntervalMs: number;
  pingTimeoutMs: number;
  /**
   * The Socket.IO admin view (@socket.io/admin-ui) on the operations port: off unless both
   * ADMIN_UI_USERNAME and ADMIN_UI_PASSWORD_HASH (bcrypt) are set; ADMIN_UI_READONLY (true) and
   * ADMIN_UI_ORIGINS (`https://admin.socket.io`, the origins allowed by CORS).
   */
  adminUi: AdminUiConfig | undefined;
  /**
   * The official group (docs/chat-node.md, "The official group"): on unless OFFICIAL_GROUP=false;
   * OFFICIAL_GROUP_NAME (VibeTalk) names it and its service sender, OFFICIAL_POSTING (`admins`) is
   * who may post until its admins choose, OFFICIAL_SERVICE_TOKEN (unset; at least 32 bytes) lets a
   * script post as the service and set roles, OFFICIAL_BACKFILL_BATCH (500) bounds a backfill batch.
   */
  official: OfficialConfig | undefined;
  /** Push notifications to offline users (docs/chat-node.md, "Push notifications"). */
  push: PushConfig;
}

export interface PushConfig {
  /** The push gateway's notify URL (PUSH_GATEWAY_URL, unset: no gateway notifications). */
  gatewayUrl: string | undefined;
  /** VAPID keys and subject (PUSH_VAPID_PUBLIC_KEY, PUSH_VAPID_PRIVATE_KEY, PUSH_VAPID_SUBJECT; all or none: Web Push off). */
  vapid: { publicKey: string; privateKey: string; subject: string } | undefined;
  /** At most one notification per user and channel per this many seconds (PUSH_MIN_INTERVAL_SECONDS, 60). */
  minIntervalSeconds: number;
  /** Devices a user may register (PUSH_MAX_DEVICES, 10). */
  maxDevices: number;
  /** Accept http Web Push endpoints on loopback addresses, for tests (PUSH_ALLOW_HTTP_LOOPBACK, false). */
  allowHttpLoopback: boolean;
  /** Delivery attempts before the dead-letter (PUSH_MAX_ATTEMPTS, 5). */
  maxAttempts: number;
  /** The first retry's delay, doubled for each next one (PUSH_RETRY_BASE_MS, 1000). */
  retryBaseMs: number;
}

export interface OfficialConfig {
  name: string;
  posting: PostingPolicy;
  serviceToken: string | undefined;
  backfillBatch: number;
}

export interface AdminUiConfig {
  username: string;
  passwordHash: string;
  readonly: boolean;
  origins: string[];
}

export interface KubernetesConfig {
  namespace: string;
  podName: string;
  clusterName: string;
  partitionsConfigMap: string;
  releasesConfigMap: string;
  pollMs: number;
  reportMs: number;
}

export const DEFAULT_FILE_TYPES = [
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
  "application/pdf",
  "text/plain",
  "application/zip",
  "audio/mpeg",
  "audio/ogg",
  "video/mp4",
  "video/webm",
];

const defaultPublicDir = fileURLToPath(new URL("../public", import.meta.url));

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const url = (...protocols: string[]) =>
  z
    .string()
    .min(1)
    .refine(
      (s) => {
        try {
          return protocols.includes(new URL(s).protocol);
        } catch {
          return false;
        }
      },
      `must be a ${protocols.join(" or ")}// URL`,
    );

/** A JWT signing secret: refused as jwtSecretProblem says (docs/security.md). */
const jwtSecret = z.string().superRefine((v, ctx) => {
  const problem = jwtSecretProblem(v);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/** Environment variables read, with their schemas and defaults. */
const envSchema = z.object({
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default("0.0.0.0"),
  OPS_PORT: int(0, 65535).default(9090),
  OPS_HOST: z.string().min(1).optional(),
  NODE_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,100}$/, "must be 1-100 of [A-Za-z0-9_.-]")
    .optional(),
  POD_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,100}$/, "must be 1-100 of [A-Za-z0-9_.-]")
    .optional(),
  REDIS_URL: url("redis:", "rediss:"),
  RABBITMQ_URL: url("amqp:", "amqps:"),
  MONGODB_URL: url("mongodb:", "mongodb+srv:"),
  JWT_SECRET: jwtSecret,
  JWT_PREVIOUS_SECRET: jwtSecret.optional(),
  TRUST_PROXY: z
    .string()
    .refine(
      (v) => v.split(",").every((a) => isIP(a.trim().split("/")[0] ?? "") !== 0),
      "must be comma-separated IP addresses or CIDRs",
    )
    .optional(),
  JWT_TTL_SECONDS: int(60, 365 * 86400).default(7 * 86400),
  PARTITIONS: int(1, 4096).default(64),
  USER_EXCHANGES: int(1, 1024).default(16),
  PARTITION_ASSIGNMENT: z.enum(["static", "kubernetes"]).default("static"),
  OWNED_PARTITIONS: z.string().default("all"),
  POD_NAMESPACE: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS-1123 label")
    .optional(),
  CLUSTER_NAME: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be a DNS-1123 subdomain")
    .optional(),
  PARTITIONS_CONFIGMAP: z.string().min(1).optional(),
  RELEASES_CONFIGMAP: z.string().min(1).optional(),
  ASSIGNMENT_POLL_MS: int(50, 60_000).default(500),
  CONNECTIONS_REPORT_MS: int(100, 600_000).default(2000),
  CONSUMER_PREFETCH: int(1, 65535).default(500),
  BATCH_SIZE: int(1, 10_000).default(200),
  CONSUMER_PIPELINE: int(0, 1).default(1),
  FLUSH_INTERVAL_MS: int(0, 10_000).default(0),
  PUBLISH_TIMEOUT_MS: int(100, 120_000).default(5000),
  STORE_TIMEOUT_MS: int(100, 120_000).default(2000),
  MAX_STORE_ATTEMPTS: int(1, 100).default(5),
  RETRY_MAX_DELAY_MS: int(100, 60_000).default(3000),
  DRAIN_SECONDS: int(0, 3600).default(25),
  BINDING_GRACE_SECONDS: int(0, 86_400).default(60),
  BIND_CHANNELS: int(1, 64).default(4),
  NODE_QUEUE_EXPIRES_SECONDS: int(5, 86_400).default(60),
  PRESENCE_HEARTBEAT_SECONDS: int(1, 300).default(5),
  PRESENCE_TTL_SECONDS: int(2, 3600).default(25),
  RECEIPT_FLUSH_MS: int(10, 60_000).default(1000),
  RECEIPT_COUNTS_INTERVAL_MS: int(100, 600_000).default(5000),
  MEMBERS_CACHE_TTL_MS: int(0, 3_600_000).default(60_000),
  FANOUT_MAX_CC: int(1, 2000).default(500),
  LARGE_CHANNEL_MEMBERS: int(2, 1_000_000).default(100),
  LARGE_CHANNEL_SWITCH_MS: int(0, 600_000).default(3000),
  LIMIT_MAX_BODY_BYTES: int(1, 1024 * 1024).default(DEFAULT_LIMITS.maxBodyBytes),
  LIMIT_MAX_FILE_IDS: int(0, 100).default(DEFAULT_LIMITS.maxFileIds),
  LIMIT_MAX_FILE_BYTES: int(1, 1024 * 1024 * 1024).default(DEFAULT_LIMITS.maxFileBytes),
  LIMIT_MAX_GROUP_MEMBERS: int(2, 100_000).default(DEFAULT_LIMITS.maxGroupMembers),
  LIMIT_SEND_RATE: int(1, 100_000).default(DEFAULT_LIMITS.sendRatePerSecond),
  LIMIT_SEND_BURST: int(1, 100_000).default(DEFAULT_LIMITS.sendBurst),
  LIMIT_MAX_PAGE: int(1, 1000).default(DEFAULT_LIMITS.maxPageLimit),
  LIMIT_EDIT_WINDOW_SECONDS: int(0, 10 * 365 * 86_400).default(DEFAULT_LIMITS.editWindowSeconds),
  FILE_TYPES: z.string().optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  OTEL_SERVICE_NAME: z.string().min(1).default("vibetalk-chat-node"),
  PUBLIC_DIR: z.string().min(1).optional(),
  SOCKET_TRANSPORTS: z
    .string()
    .regex(/^\s*(polling|websocket)(\s*,\s*(polling|websocket))*\s*$/, "must list polling and/or websocket")
    .default("polling,websocket"),
  SOCKET_PING_INTERVAL_MS: int(1000, 300_000).default(25_000),
  SOCKET_PING_TIMEOUT_MS: int(1000, 300_000).default(20_000),
  ADMIN_UI_USERNAME: z.string().min(1).max(100).optional(),
  ADMIN_UI_PASSWORD_HASH: z
    .string()
    .regex(/^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/, "must be a bcrypt hash ($2b$12$…)")
    .optional(),
  ADMIN_UI_READONLY: z.enum(["true", "false"]).default("true"),
  ADMIN_UI_ORIGINS: z.string().default("https://admin.socket.io"),
  OFFICIAL_GROUP: z.enum(["true", "false"]).default("true"),
  OFFICIAL_GROUP_NAME: z
    .string()
    .trim()
    .min(1)
    .max(100)
    .refine((v) => [...v].every((c) => c.charCodeAt(0) >= 32), "must not contain control characters")
    .default("VibeTalk"),
  OFFICIAL_POSTING: z.enum(["admins", "everyone"]).default("admins"),
  OFFICIAL_SERVICE_TOKEN: z
    .string()
    .refine((v) => Buffer.byteLength(v) >= 32, "must be at least 32 bytes")
    .optional(),
  OFFICIAL_BACKFILL_BATCH: int(1, 10_000).default(500),
  PUSH_GATEWAY_URL: z.url({ protocol: /^https?$/ }).optional(),
  PUSH_VAPID_PUBLIC_KEY: z
    .string()
    .regex(/^[A-Za-z0-9_-]{87}$/, "must be a base64url P-256 public key (87 characters)")
    .optional(),
  PUSH_VAPID_PRIVATE_KEY: z
    .string()
    .regex(/^[A-Za-z0-9_-]{43}$/, "must be a base64url P-256 private key (43 characters)")
    .optional(),
  PUSH_VAPID_SUBJECT: z
    .string()
    .regex(/^(mailto:|https:\/\/)\S+$/, "must be a mailto: or https: URL")
    .optional(),
  PUSH_MIN_INTERVAL_SECONDS: int(0, 86_400).default(60),
  PUSH_MAX_DEVICES: int(1, 100).default(10),
  PUSH_ALLOW_HTTP_LOOPBACK: z.enum(["true", "false"]).default("false"),
  PUSH_MAX_ATTEMPTS: int(1, 20).default(5),
  PUSH_RETRY_BASE_MS: int(10, 600_000).default(1000),
});

/** The names of every environment variable chat-node reads. */
export const CONFIG_ENV_VARS = Object.keys(envSchema.shape);

type Env = Record<string, string | undefined>;

/** Parses the environment into a config, or throws a ConfigError naming each bad variable. */
export function loadConfig(env: Env): ChatNodeConfig {
  // Empty strings mean "unset" (as Kubernetes renders an empty optional value).
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const r = envSchema.safeParse(cleaned);
  if (!r.success) {
    throw new ConfigError(r.error.issues.map((i) => `${i.path.join(".") || "env"}: ${i.message}`));
  }
  const e = r.data;
  const problems: string[] = [];
  let owned = new Set<number>();
  try {
    owned = parsePartitionSet(e.OWNED_PARTITIONS, e.PARTITIONS);
  } catch (err) {
    problems.push(`OWNED_PARTITIONS: ${(err as Error).message}`);
  }
  problems.push(...crossChecks(e));
  let kubernetes: KubernetesConfig | undefined;
  if (e.PARTITION_ASSIGNMENT === "kubernetes") {
    for (const name of ["POD_NAME", "POD_NAMESPACE", "CLUSTER_NAME"] as const) {
      if (!e[name]) problems.push(`${name}: required when PARTITION_ASSIGNMENT=kubernetes`);
    }
    kubernetes = {
      namespace: e.POD_NAMESPACE ?? "",
      podName: e.POD_NAME ?? "",
      clusterName: e.CLUSTER_NAME ?? "",
      partitionsConfigMap: e.PARTITIONS_CONFIGMAP ?? `${e.CLUSTER_NAME}-partitions`,
      releasesConfigMap: e.RELEASES_CONFIGMAP ?? `${e.CLUSTER_NAME}-releases`,
      pollMs: e.ASSIGNMENT_POLL_MS,
      reportMs: e.CONNECTIONS_REPORT_MS,
    };
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    kubernetes,
    port: e.PORT,
    host: e.HOST,
    opsPort: e.OPS_PORT,
    opsHost: e.OPS_HOST ?? e.HOST,
    nodeId: e.NODE_ID ?? e.POD_NAME ?? sanitize(hostname()),
    redisUrl: e.REDIS_URL,
    rabbitmqUrl: e.RABBITMQ_URL,
    mongodbUrl: e.MONGODB_URL,
    jwtSecret: e.JWT_SECRET,
    jwtPreviousSecret: e.JWT_PREVIOUS_SECRET,
    trustProxy: list(e.TRUST_PROXY),
    jwtTtlSeconds: e.JWT_TTL_SECONDS,
    partitions: e.PARTITIONS,
    userExchanges: e.USER_EXCHANGES,
    assignment: e.PARTITION_ASSIGNMENT,
    ownedPartitions: owned,
    consumerPrefetch: e.CONSUMER_PREFETCH,
    batchSize: e.BATCH_SIZE,
    consumerPipeline: e.CONSUMER_PIPELINE === 1,
    flushIntervalMs: e.FLUSH_INTERVAL_MS,
    publishTimeoutMs: e.PUBLISH_TIMEOUT_MS,
    storeTimeoutMs: e.STORE_TIMEOUT_MS,
    maxStoreAttempts: e.MAX_STORE_ATTEMPTS,
    retryMaxDelayMs: e.RETRY_MAX_DELAY_MS,
    drainSeconds: e.DRAIN_SECONDS,
    bindingGraceSeconds: e.BINDING_GRACE_SECONDS,
    bindChannels: e.BIND_CHANNELS,
    nodeQueueExpiresSeconds: e.NODE_QUEUE_EXPIRES_SECONDS,
    presenceHeartbeatSeconds: e.PRESENCE_HEARTBEAT_SECONDS,
    presenceTtlSeconds: e.PRESENCE_TTL_SECONDS,
    receiptFlushMs: e.RECEIPT_FLUSH_MS,
    receiptCountsIntervalMs: e.RECEIPT_COUNTS_INTERVAL_MS,
    membersCacheTtlMs: e.MEMBERS_CACHE_TTL_MS,
    fanoutMaxRecipients: e.FANOUT_MAX_CC,
    largeChannelMembers: e.LARGE_CHANNEL_MEMBERS,
    largeChannelSwitchMs: e.LARGE_CHANNEL_SWITCH_MS,
    limits: {
      ...DEFAULT_LIMITS,
      maxBodyBytes: e.LIMIT_MAX_BODY_BYTES,
      maxFileIds: e.LIMIT_MAX_FILE_IDS,
      maxFileBytes: e.LIMIT_MAX_FILE_BYTES,
      maxGroupMembers: e.LIMIT_MAX_GROUP_MEMBERS,
      sendRatePerSecond: e.LIMIT_SEND_RATE,
      sendBurst: e.LIMIT_SEND_BURST,
      maxPageLimit: e.LIMIT_MAX_PAGE,
      defaultPageLimit: Math.min(DEFAULT_LIMITS.defaultPageLimit, e.LIMIT_MAX_PAGE),
      editWindowSeconds: e.LIMIT_EDIT_WINDOW_SECONDS,
    },
    fileTypes: e.FILE_TYPES
      ? e.FILE_TYPES.split(",")
          .map((s) => s.trim().toLowerCase())
          .filter(Boolean)
      : [...DEFAULT_FILE_TYPES],
    logLevel: e.LOG_LEVEL,
    otelEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
    otelServiceName: e.OTEL_SERVICE_NAME,
    publicDir: e.PUBLIC_DIR ?? defaultPublicDir,
    pod: e.POD_NAME,
    transports: [...new Set(list(e.SOCKET_TRANSPORTS))] as Array<"polling" | "websocket">,
    pingIntervalMs: e.SOCKET_PING_INTERVAL_MS,
    pingTimeoutMs: e.SOCKET_PING_TIMEOUT_MS,
    adminUi:
      e.ADMIN_UI_USERNAME && e.ADMIN_UI_PASSWORD_HASH
        ? {
            username: e.ADMIN_UI_USERNAME,
            passwordHash: e.ADMIN_UI_PASSWORD_HASH,
            readonly: e.ADMIN_UI_READONLY === "true",
            origins: list(e.ADMIN_UI_ORIGINS).filter(Boolean),
          }
        : undefined,
    official:
      e.OFFICIAL_GROUP === "true"
        ? {
            name: e.OFFICIAL_GROUP_NAME,
            posting: e.OFFICIAL_POSTING,
            serviceToken: e.OFFICIAL_SERVICE_TOKEN,
            backfillBatch: e.OFFICIAL_BACKFILL_BATCH,
          }
        : undefined,
    push: pushConfig(e),
  };
}

function pushConfig(e: z.output<typeof envSchema>): PushConfig {
  const {
    PUSH_VAPID_PUBLIC_KEY: publicKey,
    PUSH_VAPID_PRIVATE_KEY: privateKey,
    PUSH_VAPID_SUBJECT: subject,
  } = e;
  return {
    gatewayUrl: e.PUSH_GATEWAY_URL,
    vapid: publicKey && privateKey && subject ? { publicKey, privateKey, subject } : undefined,
    minIntervalSeconds: e.PUSH_MIN_INTERVAL_SECONDS,
    maxDevices: e.PUSH_MAX_DEVICES,
    allowHttpLoopback: e.PUSH_ALLOW_HTTP_LOOPBACK === "true",
    maxAttempts: e.PUSH_MAX_ATTEMPTS,
    retryBaseMs: e.PUSH_RETRY_BASE_MS,
  };
}

/** Rules between variables. */
function crossChecks(e: z.output<typeof envSchema>): string[] {
  const problems: string[] = [];
  if (e.OPS_PORT !== 0 && e.OPS_PORT === e.PORT) problems.push("OPS_PORT: must differ from PORT");
  if (e.PRESENCE_TTL_SECONDS <= e.PRESENCE_HEARTBEAT_SECONDS) {
    problems.push("PRESENCE_TTL_SECONDS: must exceed PRESENCE_HEARTBEAT_SECONDS");
  }
  if ((e.ADMIN_UI_USERNAME === undefined) !== (e.ADMIN_UI_PASSWORD_HASH === undefined)) {
    problems.push("ADMIN_UI_USERNAME: set together with ADMIN_UI_PASSWORD_HASH, or neither");
  }
  const vapid = [e.PUSH_VAPID_PUBLIC_KEY, e.PUSH_VAPID_PRIVATE_KEY, e.PUSH_VAPID_SUBJECT];
  if (vapid.some((v) => v !== undefined) && !vapid.every((v) => v !== undefined)) {
    problems.push("PUSH_VAPID_PUBLIC_KEY: set with PUSH_VAPID_PRIVATE_KEY and PUSH_VAPID_SUBJECT, or none");
  }
  if (e.JWT_PREVIOUS_SECRET !== undefined && e.JWT_PREVIOUS_SECRET === e.JWT_SECRET) {
    problems.push("JWT_PREVIOUS_SECRET: must differ from JWT_SECRET");
  }
  return problems;
}

const list = (v: string | undefined): string[] => (v ? v.split(",").map((a) => a.trim()) : []);

function sanitize(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 100) || "chat-node";
}
