import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { Broker, MembersChangedEvent, PresenceState, PresenceStore, UserStore } from "../ports.js";
import type { ReceiptFlusher } from "../services/receipt-flusher.js";
import type { ChannelBindings } from "./channel-bindings.js";

export interface UserSessionsOptions {
  /** A user's binding stays this long after their last socket here goes. */
  bindingGraceMs: number;
  /** Presence heartbeat period. */
  heartbeatMs: number;
  /** How long a connecting socket waits for its user's binding before going ahead anyway. */
  bindTimeoutMs: number;
}

export interface UserSessionsDeps {
  broker: Broker;
  presence: PresenceStore;
  store: UserStore;
  receipts: ReceiptFlusher;
  /** The large channels this node binds for the users it holds. */
  channels: ChannelBindings;
  metrics: Metrics;
  log: Logger;
}

/** A user went online or offline (cluster-wide view). */
export type PresenceListener = (state: PresenceState) => void;

/**
 * The users held by this node: their local sockets, their queue bindings (kept for a grace period
 * after the last socket goes, since reconnects are common) and their presence: joined when their
 * first socket arrives, left when the last goes, vouched for by the node's lease, which the heartbeat
 * renews (one Redis write per node, however many users it holds).
 * Operations on one user run in order.
 */
export class UserSessions {
  private readonly sockets = new Map<string, Set<string>>();
  private readonly bound = new Set<string>();
  /** Users this node has joined in presence (from the handshake until they leave here). */
  private readonly joined = new Set<string>();
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();
  private readonly chains = new Map<string, Promise<void>>();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private readonly presenceListeners = new Set<PresenceListener>();

  constructor(
    private readonly d: UserSessionsDeps,
    private readonly opts: UserSessionsOptions,
  ) {}

  /** Subscribes to the presence changes these sessions see; returns the unsubscribe. */
  onPresence(listener: PresenceListener): () => void {
    this.presenceListeners.add(listener);
    return () => this.presenceListeners.delete(listener);
  }

  private publishPresence(state: PresenceState): void {
    for (const l of this.presenceListeners) {
      try {
        l(state);
      } catch (err) {
        this.d.log.warn(
          { event: "presence.listener_failed", userId: state.userId, err: (err as Error).message },
          "presence listener failed",
        );
      }
    }
  }

  private serial(userId: string, op: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(userId) ?? Promise.resolve();
    const next = prev.then(op, op).catch((err: unknown) => {
      this.d.log.warn(
        { event: "sessions.op_failed", userId, err: (err as Error).message },
        "user session operation failed",
      );
    });
    this.chains.set(userId, next);
    void next.then(() => {
      if (this.chains.get(userId) === next) this.chains.delete(userId);
    });
    return next;
  }

  /** Before a socket is accepted: make sure the user's events reach this node. */
  async prepare(userId: string): Promise<void> {
    this.cancelGrace(userId);
    const bind = this.serial(userId, async () => {
      if (this.bound.has(userId)) return;
      await this.d.broker.bindUser(userId);
      this.bound.add(userId);
      await this.d.channels.attach(userId);
      this.d.metrics.boundUsers.set(this.bound.size);
    });
    // Presence before the handshake completes: a socket that is connected is online.
    const online = this.serial(userId, () => this.markOnline(userId));
    // The timer is cleared once both are done: a timer left for its full 5 s per handshake outlives the
    // young generation and stays on the heap as garbage after the handshakes are over.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([bind, online]),
      new Promise((r) => (timer = setTimeout(r, this.opts.bindTimeoutMs).unref())),
    ]);
    clearTimeout(timer);
    // If the socket never arrives, the binding still goes after the grace period.
    if (!this.sockets.has(userId)) this.scheduleUnbind(userId);
  }

  /** Joins the user in presence once per stay here (the handshake and the socket both ask). */
  private async markOnline(userId: string): Promise<void> {
    if (this.joined.has(userId)) return;
    let cameOnline: string[];
    try {
      cameOnline = await this.d.presence.join([userId]);
    } catch {
      return; // Redis down: the next socket, or the lease's renewal once it is back, joins them
    }
    this.joined.add(userId);
    if (cameOnline.includes(userId)) this.publishPresence({ userId, online: true, lastSeenAt: null });
  }

  /** A socket of the user is connected here. */
  async add(userId: string, socketId: string): Promise<void> {
    let set = this.sockets.get(userId);
    const first = !set;
    if (!set) {
      set = new Set();
      this.sockets.set(userId, set);
    }
    set.add(socketId);
    this.cancelGrace(userId);
    this.updateGauges();
    // Recovered sockets skip the handshake middleware: bind and heartbeat here.
    if (!this.bound.has(userId)) await this.prepare(userId);
    else if (first) await this.serial(userId, () => this.markOnline(userId));
  }

  /** A socket of the user went. */
  async remove(userId: string, socketId: string): Promise<void> {
    const set = this.sockets.get(userId);
    if (!set || !set.delete(socketId)) return;
    this.updateGauges();
    if (set.size > 0) return;
    this.sockets.delete(userId);
    this.updateGauges();
    this.scheduleUnbind(userId);
    await this.d.receipts.flushUser(userId);
    await this.serial(userId, () => this.leavePresence(userId));
  }

  private async leavePresence(userId: string): Promise<void> {
    this.joined.delete(userId);
    try {
      const at = new Date();
      const state = await this.d.presence.leave(userId, at);
      if (this.sockets.has(userId) || state.online) return;
      await this.d.store.setLastSeen(userId, at).catch(() => undefined);
      this.publishPresence(state);
    } catch (err) {
      this.d.log.warn(
        { event: "presence.leave_failed", userId, err: (err as Error).message },
        "presence not updated",
      );
    }
  }

  private scheduleUnbind(userId: string): void {
    this.cancelGrace(userId);
    const t = setTimeout(() => {
      this.graceTimers.delete(userId);
      if (this.sockets.has(userId)) return;
      void this.serial(userId, async () => {
        // A handshake whose socket never arrived joined them in presence: they leave with the binding.
        if (!this.sockets.has(userId) && this.joined.has(userId)) await this.leavePresence(userId);
        if (this.sockets.has(userId) || !this.bound.has(userId)) return;
        await this.d.broker.unbindUser(userId);
        this.bound.delete(userId);
        await this.d.channels.detach(userId);
        this.d.metrics.boundUsers.set(this.bound.size);
      });
    }, this.opts.bindingGraceMs);
    t.unref();
    this.graceTimers.set(userId, t);
  }

  private cancelGrace(userId: string): void {
    const t = this.graceTimers.get(userId);
    if (t) {
      clearTimeout(t);
      this.graceTimers.delete(userId);
    }
  }

  get channels(): ChannelBindings {
    return this.d.channels;
  }

  /** Rereads the channels marked large; those new here are adopted for the users bound here. */
  async refreshLargeChannels(opts: { all?: boolean } = {}): Promise<void> {
    const ch = this.d.channels;
    const fresh = await ch.refresh();
    // After a reconnect every large group is read again (members added while the control events were
    // lost); the official group needs no read: every account is a member and joined at attach.
    const again = opts.all ? ch.largeGroups().filter((c) => !fresh.includes(c)) : [];
    for (const c of [...fresh, ...again]) await this.adopt(c);
  }

  /**
   * A channel's membership changed (a control event). For a large channel the bound users named join
   * or leave it here, each in their own chain (after any bind or unbind of theirs in flight); a group
   * that just became large is adopted: its members bound here join it.
   */
  async channelMembersChanged(e: MembersChangedEvent): Promise<void> {
    const ch = this.d.channels;
    const joining = new Set(e.added ?? []);
    if (e.large && ch.learn(e.channelId))
      for (const u of await ch.membersAmong(e.channelId, this.bound)) joining.add(u);
    if (!ch.isLarge(e.channelId)) return;
    const leaving = (e.removed ?? []).filter((u) => !joining.has(u));
    await Promise.all([
      this.joinAll(e.channelId, joining),
      ...leaving.map((u) => this.serial(u, () => ch.leave(e.channelId, u))),
    ]);
  }

  /** A large group's members bound here join it (one read of its members). */
  private async adopt(channelId: string): Promise<void> {
    await this.joinAll(channelId, await this.d.channels.membersAmong(channelId, this.bound));
  }

  /** Each user, in their own chain and if still bound here, joins a large channel. */
  private async joinAll(channelId: string, users: Iterable<string>): Promise<void> {
    await Promise.all(
      [...users].map((u) =>
        this.serial(u, async () => {
          if (this.bound.has(u)) await this.d.channels.join(channelId, u);
        }),
      ),
    );
  }

  holds(userId: string): boolean {
    return this.sockets.has(userId);
  }

  socketCount(userId: string): number {
    return this.sockets.get(userId)?.size ?? 0;
  }

  get connections(): number {
    let n = 0;
    for (const s of this.sockets.values()) n += s.size;
    return n;
  }

  private updateGauges(): void {
    const m = this.d.metrics;
    const users = this.sockets.size;
    const conns = this.connections;
    let max = 0;
    for (const s of this.sockets.values()) max = Math.max(max, s.size);
    m.connections.set(conns);
    m.connectedUsers.set(users);
    m.socketsPerUser.set({ stat: "avg" }, users ? conns / users : 0);
    m.socketsPerUser.set({ stat: "max" }, max);
  }

  startHeartbeat(): void {
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.opts.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  private async heartbeat(): Promise<void> {
    try {
      const cameOnline = await this.d.presence.renew(() => [...this.sockets.keys()]);
      for (const u of cameOnline) this.publishPresence({ userId: u, online: true, lastSeenAt: null });
    } catch (err) {
      this.d.log.warn(
        { event: "presence.heartbeat_failed", err: (err as Error).message },
        "presence heartbeat failed",
      );
    }
  }

  /** Node leaving: stop heartbeats, mark every held user as left here. */
  async shutdown(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    for (const t of this.graceTimers.values()) clearTimeout(t);
    this.graceTimers.clear();
    const users = [...this.sockets.keys()];
    this.sockets.clear();
    this.updateGauges();
    await Promise.all(users.map((u) => this.d.receipts.flushUser(u)));
    await Promise.all(users.map((u) => this.leavePresence(u)));
  }
}
