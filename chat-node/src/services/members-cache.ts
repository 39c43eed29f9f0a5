import { ProtocolError } from "@vibetalk/protocol";
import type { ChannelRecord, ChannelStore, MemberRecord, MemberStore, MembershipVersions } from "../ports.js";

export interface ChannelEntry {
  channel: ChannelRecord;
  members: Map<string, MemberRecord>;
  loadedAt: number;
  /** The channel's membership version when this entry was read (0: unknown). */
  version: number;
}

/** How long an authorisation check waits for the version before trusting the cached entry. */
const VERSION_TIMEOUT_MS = 250;

/**
 * A channel's members (and its static facts), cached in every node that needs them: for the send
 * check and for fan-out. Entries expire after `ttlMs` and are invalidated by membership-change
 * control events (docs/chat-node.md). Concurrent loads of one channel share one read.
 *
 * Authorisation (`requireMember`) does not wait for the control event: it compares the entry with
 * the channel's membership version in Redis, which every change bumps before it answers, so a
 * member removed on one node is refused on every node from the next request on (docs/security.md).
 * If the version cannot be read within 250 ms the cached entry is used (Redis down must not stop
 * chat); fan-out uses the entry as it is and follows within the control event's delivery.
 */
export class MembersCache {
  private readonly entries = new Map<string, ChannelEntry>();
  private readonly loading = new Map<string, Promise<ChannelEntry | null>>();
  private generation = 0;

  constructor(
    private readonly store: ChannelStore & MemberStore,
    private readonly ttlMs: number,
    private readonly versions: MembershipVersions | null = null,
    private readonly maxEntries = 20_000,
  ) {}

  /** A membership change is stored: bump the version (every node's next check rereads), then drop ours. */
  async changed(channelId: string): Promise<void> {
    this.invalidate(channelId);
    await this.versions?.bump(channelId);
  }

  private async currentVersion(channelId: string): Promise<number | null> {
    if (!this.versions) return null;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((r) => (timer = setTimeout(() => r(null), VERSION_TIMEOUT_MS)));
    try {
      return await Promise.race([this.versions.get(channelId).catch(() => null), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

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
    // The version first: a change racing with this read leaves an entry older than the version.
    const version = (await this.currentVersion(channelId)) ?? 0;
    const [channel, members] = await Promise.all([
      this.store.getChannel(channelId),
      this.store.listMembers(channelId),
    ]);
    if (!channel) return null;
    const entry: ChannelEntry = {
      channel,
      members: new Map(members.map((m) => [m.userId, m])),
      loadedAt: Date.now(),
      version,
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
    let entry = await this.get(channelId);
    if (entry && this.versions) {
      const v = await this.currentVersion(channelId);
      if (v !== null && v !== entry.version) {
        this.invalidate(channelId);
        entry = await this.get(channelId);
      }
    }
    if (!entry) throw new ProtocolError("NOT_FOUND", "no such channel");
    const member = entry.members.get(userId);
    if (!member) throw new ProtocolError("FORBIDDEN", "not a member of this channel");
    return { entry, member };
  }
}
