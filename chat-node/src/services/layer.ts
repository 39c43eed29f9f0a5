/**
 * A chat-node's service layer on its ports: the one wiring of ChatService, the members cache, receipts,
 * tokens and the user sessions, used by node.ts on the real adapters and by the unit tests' FakeCluster
 * on the in-memory fakes (docs/chat-node.md, "Ports and fakes"), so both run the same composition.
 */
import type { ChatNodeConfig } from "../config.js";
import { ReceiptCoalescer } from "../domain/receipts.js";
import { OFFICIAL_CHANNEL_ID } from "@vibetalk/protocol";
import { ChannelBindings } from "../gateway/channel-bindings.js";
import { UserSessions, type UserSessionsOptions } from "../gateway/sessions.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type {
  Broker,
  MembershipVersions,
  PresenceStore,
  PushThrottle,
  SessionRevocations,
  Store,
} from "../ports.js";
import { TokenService } from "./auth.js";
import { ChatService } from "./chat-service.js";
import { MembersCache } from "./members-cache.js";
import { OfficialGroup } from "./official.js";
import { ReceiptCounts } from "./receipt-counts.js";
import { ReceiptFlusher } from "./receipt-flusher.js";

export interface ServicePorts {
  store: Store;
  broker: Broker;
  presence: PresenceStore;
  versions: MembershipVersions;
  revocations: SessionRevocations;
  /** Cluster-wide interval keys (SET NX PX): one node per channel per interval counts receipts. */
  intervals: PushThrottle;
}

export interface ServiceLayer {
  service: ChatService;
  members: MembersCache;
  receipts: ReceiptCoalescer;
  flusher: ReceiptFlusher;
  /** Large channels' receipt counts (started by node.ts with the flusher). */
  receiptCounts: ReceiptCounts;
  tokens: TokenService;
  /** The official group (null when OFFICIAL_GROUP is off): node.ts ensures it and runs its backfill. */
  official: OfficialGroup | null;
  /** A new UserSessions over the same ports (not started); node.ts makes one, tests as many as they need. */
  sessions(options?: Partial<UserSessionsOptions>): UserSessions;
}

export function buildServiceLayer(
  config: ChatNodeConfig,
  ports: ServicePorts,
  metrics: Metrics,
  log: Logger,
): ServiceLayer {
  const { store, broker, presence } = ports;
  const members = new MembersCache(store, config.membersCacheTtlMs, ports.versions);
  const receipts = new ReceiptCoalescer(config.receiptFlushMs);
  const flusher = new ReceiptFlusher(receipts, store, metrics, log, config.receiptFlushMs);
  const receiptCounts = new ReceiptCounts(
    { store, broker, throttle: ports.intervals, log },
    config.receiptCountsIntervalMs,
  );
  const tokens = new TokenService(
    { current: config.jwtSecret, previous: config.jwtPreviousSecret },
    config.jwtTtlSeconds,
    ports.revocations,
  );
  const official = config.official
    ? new OfficialGroup({ config: config.official, store, members, broker, nodeId: config.nodeId, log })
    : null;
  const service = new ChatService({
    config,
    store,
    broker,
    members,
    receipts,
    receiptCounts,
    presence,
    tokens,
    metrics,
    log,
    official,
  });
  const sessions = (options: Partial<UserSessionsOptions> = {}) =>
    new UserSessions(
      {
        broker,
        presence,
        store,
        receipts: flusher,
        channels: new ChannelBindings({
          broker,
          store,
          officialId: config.official ? OFFICIAL_CHANNEL_ID : null,
          metrics,
        }),
        metrics,
        log,
      },
      {
        bindingGraceMs: config.bindingGraceSeconds * 1000,
        heartbeatMs: config.presenceHeartbeatSeconds * 1000,
        bindTimeoutMs: 5000,
        ...options,
      },
    );
  return { service, members, receipts, flusher, receiptCounts, tokens, official, sessions };
}
