// The PresenceStore port in memory (docs/chat-node.md#ports-and-fakes): what RedisPresence does, as
// presenceContract states it. One MemoryPresenceServer is the shared Redis; `node(id)` is one
// chat-node's adapter on it.
import { DependencyUnavailableError, type PresenceState, type PresenceStore } from "../../../src/ports.js";

export class MemoryPresenceServer {
  /** userId → nodeId → live until (ms). */
  readonly live = new Map<string, Map<string, number>>();
  /** userId → when their last socket went (ms). */
  readonly lastSeen = new Map<string, number>();
  /** While true every call rejects with DependencyUnavailableError (Redis is down). */
  unavailable = false;

  node(nodeId: string, ttlMs: number): MemoryPresence {
    return new MemoryPresence(this, nodeId, ttlMs);
  }

  isLive(userId: string, now: number): boolean {
    return [...(this.live.get(userId)?.values() ?? [])].some((until) => until > now);
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

  async heartbeat(userIds: readonly string[]): Promise<string[]> {
    this.server.check();
    const now = Date.now();
    const cameOnline = userIds.filter((u) => !this.server.isLive(u, now));
    for (const u of userIds) {
      let fields = this.server.live.get(u);
      if (!fields) this.server.live.set(u, (fields = new Map()));
      fields.set(this.nodeId, now + this.ttlMs);
    }
    return [...new Set(cameOnline)];
  }

  async leave(userId: string, at: Date): Promise<PresenceState> {
    this.server.check();
    const fields = this.server.live.get(userId);
    fields?.delete(this.nodeId);
    if (fields?.size === 0) this.server.live.delete(userId);
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
