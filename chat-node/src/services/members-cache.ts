import { ProtocolError } from "@vibetalk/protocol";
import type { ChannelRecord, MemberRecord, Store } from "../ports.js";

export interface ChannelEntry {
  channel: ChannelRecord;
  members: Map<string, MemberRecord>;
  loadedAt: number;
}

/**
 * A channel's members (and its static facts), cached in every node that needs them: for the send
 * check and for fan-out. Entries expire after `ttlMs` and are invalidated by membership-change
 * control events (DESIGN.md §3). Concurrent loads of one channel share one read.
 */
export class MembersCache {
  private readonly entries = new Map<string, ChannelEntry>();
  private readonly loading = new Map<string, Promise<ChannelEntry | null>>();
  private generation = 0;

  constructor(
    private readonly store: Store,
    private readonly ttlMs: number,
    private readonly maxEntries = 20_000,
  ) {}

  /** The channel and its members, or null when the channel does not exist. */
  async get(channelId: string): Promise<ChannelEntry | null> {
    const hit = this.entries.get(channelId);
    if (hit && Date.now() - hit.loadedAt < this.ttlMs) return hit;
    const inflight = this.loading.get(channelId);
    if (inflight) return inflight;
    const gen = this.generation;
    const p = this.load(channelId, gen).finally(() => this.loading.delete(channelId));
    this.loading.set(channelId, p);
    return p;
  }

  private async load(channelId: string, gen: number): Promise<ChannelEntry | null> {
    const [channel, members] = await Promise.all([
      this.store.getChannel(channelId),
      this.store.listMembers(channelId),
    ]);
    if (!channel) return null;
    const entry: ChannelEntry = {
      channel,
      members: new Map(members.map((m) => [m.userId, m])),
      loadedAt: Date.now(),
    };
    if (gen === this.generation && !this.invalidatedDuringLoad.has(channelId)) {
      if (this.entries.size >= this.maxEntries) {
        const oldest = this.entries.keys().next().value;
        if (oldest !== undefined) this.entries.delete(oldest);
      }
      this.entries.set(channelId, entry);
    }
    this.invalidatedDuringLoad.delete(channelId);
    return entry;
  }

  private readonly invalidatedDuringLoad = new Set<string>();

  /** Membership or name changed: the next read goes to the store. */
  invalidate(channelId: string): void {
    this.entries.delete(channelId);
    if (this.loading.has(channelId)) this.invalidatedDuringLoad.add(channelId);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }

  /** The entry if the user is a member; NOT_FOUND / FORBIDDEN otherwise. */
  async requireMember(
    channelId: string,
    userId: string,
  ): Promise<{ entry: ChannelEntry; member: MemberRecord }> {
    const entry = await this.get(channelId);
    if (!entry) throw new ProtocolError("NOT_FOUND", "no such channel");
    const member = entry.members.get(userId);
    if (!member) throw new ProtocolError("FORBIDDEN", "not a member of this channel");
    return { entry, member };
  }
}
