import type { BalanceRound } from "@vibetalk/protocol/cluster";
import type { Counter } from "prom-client";
import type { Server } from "socket.io";
import type { Logger } from "../logger.js";

export interface ShedderOptions {
  /** The chat Socket.IO server whose local sockets are shed. */
  io: Server;
  /** This pod's name: its entry in the round's `shed`. */
  podName: string;
  /** vibetalk_sockets_shed_total. */
  shedTotal: Counter;
  log: Logger;
  /** True while the node drains (a drain moves every socket; a round never adds to it). */
  draining: () => boolean;
  /** A socket asked to reconnect that is still here after this long is disconnected (default 5 s). */
  closeAfterMs?: number;
  random?: () => number;
  now?: () => number;
}

/**
 * Sheds the sockets a balance round asks of this pod (docs/operator.md, "Connection balance"): each chosen
 * socket gets, at a random moment within the round's window (jitter, so the reconnects do not arrive at
 * once), the same `reconnect` a drain sends, with reason `rebalance`; the client reconnects through the
 * load balancer and asks `sync` for what it missed, so nothing is lost: sends are acked only once durable
 * and retried with their clientMsgId. Until the round expires the node refuses new sockets while it holds
 * more than the round's average, so that the reconnects land on less-loaded pods.
 */
export class SocketShedder {
  private lastRound = 0;
  private refuseAbove = Infinity;
  private refuseUntil = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(private readonly o: ShedderOptions) {
    this.random = o.random ?? Math.random;
    this.now = o.now ?? Date.now;
  }

  /** A round read from the ConfigMap (every read; a round is acted on once). Returns the sockets asked. */
  apply(round: BalanceRound | undefined): number {
    if (!round || round.round <= this.lastRound) return 0;
    this.lastRound = round.round;
    const now = this.now();
    const want = round.shed[this.o.podName] ?? 0;
    if (want === 0 || this.o.draining() || Date.parse(round.expiresAt) <= now) return 0;
    this.refuseAbove = round.average;
    this.refuseUntil = Date.parse(round.expiresAt);
    const sockets = [...this.o.io.of("/").sockets.values()];
    const before = sockets.length;
    // a uniform sample of `want` sockets (partial Fisher-Yates)
    const n = Math.min(want, sockets.length);
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(this.random() * (sockets.length - i));
      [sockets[i], sockets[j]] = [sockets[j]!, sockets[i]!];
    }
    const chosen = sockets.slice(0, n);
    for (const socket of chosen) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (!socket.connected || this.o.draining()) return;
        // local, so it is written before any disconnect (as the drain does)
        this.o.io.local.to(socket.id).emit("reconnect", { reason: "rebalance" });
        this.o.shedTotal.inc();
        const close = setTimeout(() => {
          this.timers.delete(close);
          if (socket.connected) socket.disconnect(true);
        }, this.o.closeAfterMs ?? 5000);
        this.timers.add(close);
      }, this.random() * round.windowMs);
      this.timers.add(t);
    }
    this.o.log.info(
      {
        event: "sockets.shed",
        round: round.round,
        asked: n,
        connections: before,
        average: round.average,
        windowMs: round.windowMs,
      },
      "shedding sockets to less-loaded nodes",
    );
    return n;
  }

  /** Refuse a new socket: a round is running and this node holds more than its average. */
  refusing(connections: number): boolean {
    return this.now() < this.refuseUntil && connections >= this.refuseAbove;
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.refuseUntil = 0;
  }
}
