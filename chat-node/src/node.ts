import type { BalanceRound } from "@vibetalk/protocol/cluster";
import type { ChatNodeConfig } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { closeBackends, connectBackends, type Backends } from "./node/backends.js";
import { buildFront, listen, type Front } from "./node/front.js";
import { startPartitions, stopPartitions, type PartitionSide } from "./node/partitions.js";
import type { AssignmentSource } from "./ports.js";

export interface ChatNodeOptions {
  /** Partition ownership; defaults to the static assignment of the config. */
  assignment?: AssignmentSource;
  logger?: Logger;
  /** Process-level default metrics (off when several nodes share a process). Default true. */
  defaultMetrics?: boolean;
}

export interface ChatNode {
  readonly config: ChatNodeConfig;
  readonly metrics: Metrics;
  /** `http://host:port` once started: the API, Socket.IO and the web client. */
  readonly url: string;
  readonly address: { host: string; port: number };
  /** `http://host:opsPort` once started: /healthz, /readyz, /metrics, /internal/connections. */
  readonly opsUrl: string;
  start(): Promise<void>;
  /** Graceful drain: stop accepting, release partitions, send sockets elsewhere, close. */
  stop(): Promise<void>;
  /** Owned partitions right now. */
  ownedPartitions(): number[];
  connections(): number;
  /** A connection balance round from the operator: shed what it asks of this pod (gateway/shedding.ts). */
  balance(round: BalanceRound | undefined): void;
}

/** A started chat-node's parts: its backends, what faces clients, and its partitions (node/*.ts). */
type Parts = Backends & Front & PartitionSide;

/** Builds a chat-node from its config; several may run in one process (tests). */
export function createChatNode(config: ChatNodeConfig, options: ChatNodeOptions = {}): ChatNode {
  const log = options.logger ?? createLogger(config.logLevel, config.nodeId, config.pod);
  const metrics = createMetrics(config.nodeId, { defaultMetrics: options.defaultMetrics ?? true });
  let parts: Parts | null = null;
  let address = { host: config.host, port: config.port };
  let opsAddress = { host: config.opsHost, port: config.opsPort };
  let draining = false;
  let stopping: Promise<void> | null = null;

  async function start(): Promise<void> {
    const t0 = Date.now();
    const backends = await connectBackends(config, metrics, log);
    const front = await buildFront(config, backends, metrics, log, () => draining);
    ({ address, opsAddress } = await listen(config, front));
    const side = await startPartitions(config, backends, front.members, metrics, log, options.assignment);
    parts = { ...backends, ...front, ...side };
    log.info(
      {
        event: "node.started",
        port: address.port,
        opsPort: opsAddress.port,
        partitions: side.manager.owned().length,
        ms: Date.now() - t0,
      },
      "chat-node started",
    );
  }

  /** The drain (docs/chat-node.md): partitions handed over first, then the sockets sent elsewhere. */
  async function shutdown(): Promise<void> {
    const p = parts;
    if (!p) return;
    draining = true;
    p.shedder.stop();
    const deadline = Date.now() + config.drainSeconds * 1000;
    const left = () => Math.max(0, deadline - Date.now());
    log.info({ event: "node.draining" }, "draining");
    await p.official?.stop();
    await stopPartitions(p);
    await p.gateway.drain(Math.min(left() / 2, 10_000));
    await p.sessions.shutdown();
    await p.flusher.stop();
    await p.receiptCounts.stop();
    await p.gateway.close();
    await p.app.close().catch(() => undefined);
    await p.ops.close().catch(() => undefined);
    await closeBackends(p);
    parts = null;
    log.info({ event: "node.stopped", msLeft: left() }, "chat-node stopped");
  }

  return {
    config,
    metrics,
    get url() {
      return `http://${address.host}:${address.port}`;
    },
    get address() {
      return address;
    },
    get opsUrl() {
      return `http://${opsAddress.host}:${opsAddress.port}`;
    },
    start,
    stop: () => (stopping ??= shutdown()),
    ownedPartitions: () => parts?.manager.owned() ?? [],
    connections: () => parts?.gateway.connections ?? 0,
    balance: (round) => void parts?.shedder.apply(round),
  };
}
