// The PresenceStore port in memory (docs/chat-node.md#ports-and-fakes): what RedisPresence does, as
// presenceContract states it. One MemoryPresenceServer is the shared Redis; `node(id)` is one
// chat-node's adapter on it.
import { DependencyUnavailableError, type PresenceState, type PresenceStore } from "../../../src/ports.js";

export class MemoryPresenceServer {
  /** userId → the nodes holding them. */
  readonly live = new Map<string, Set<string>>();
  /** nodeId → its lease's end (ms). */
  readonly leases = new Map<string, number>();
  /** userId → when their last socket went (ms). */
  readonly lastSeen = new Map<string, number>();
  /** While true every call rejects with DependencyUnavailableError (Redis is down). */
  unavailable = false;

  node(nodeId: string, ttlMs: number): MemoryPresence {
    return new MemoryPresence(this, nodeId, ttlMs);
  }

  isLive(userId: string, now: number): boolean {
    return [...(this.live.get(userId) ?? [])].some((n) => (this.leases.get(n) ?? 0) > now);
  }

  check(): void {
    if (this.unavailable) throw new DependencyUnavailableError("redis", "Redis is unavailable");
  }
}

export class MemoryPresence implements PresenceStore {
  constructor(
    private readonly server: MemoryPresenceServer,
    private readonly nodeId: string,
    private readonly ttlMs: number,
  ) {}

  async join(userIds: readonly string[]): Promise<string[]> {
    this.server.check();
    const now = Date.now();
    const cameOnline = userIds.filter((u) => !this.server.isLive(u, now));
    this.server.leases.set(this.nodeId, now + this.ttlMs);
    for (const u of userIds) {
      let nodes = this.server.live.get(u);
      if (!nodes) this.server.live.set(u, (nodes = new Set()));
      nodes.add(this.nodeId);
    }
    return [...new Set(cameOnline)];
  }

  async renew(held: () => readonly string[]): Promise<string[]> {
    this.server.check();
    const now = Date.now();
    if ((this.server.leases.get(this.nodeId) ?? 0) > now) {
      this.server.leases.set(this.nodeId, now + this.ttlMs);
      return [];
    }
    return this.join(held());
  }

  async leave(userId: string, at: Date): Promise<PresenceState> {
    this.server.check();
    const nodes = this.server.live.get(userId);
    nodes?.delete(this.nodeId);
    if (nodes?.size === 0) this.server.live.delete(userId);
    if (this.server.isLive(userId, Date.now())) return { userId, online: true, lastSeenAt: null };
    this.server.lastSeen.set(userId, at.getTime());
    return { userId, online: false, lastSeenAt: new Date(at) };
  }

  async get(userIds: readonly string[]): Promise<PresenceState[]> {
    this.server.check();
    const now = Date.now();
    return userIds.map((userId) => {
      const online = this.server.isLive(userId, now);
      const seen = this.server.lastSeen.get(userId);
      return { userId, online, lastSeenAt: !online && seen !== undefined ? new Date(seen) : null };
    });
  }

  async onlineCount(): Promise<number> {
    this.server.check();
    const now = Date.now();
    return [...this.server.live.keys()].filter((u) => this.server.isLive(u, now)).length;
  }

  async ping(): Promise<boolean> {
    return !this.server.unavailable;
  }
}
