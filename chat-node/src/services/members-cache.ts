import { ProtocolError } from "@vibetalk/protocol";
import type {
  ChannelRecord,
  ChannelStore,
  MemberRecord,
  MembersChangedEvent,
  MemberStore,
  MembershipVersions,
} from "../ports.js";
import { fanOutRoute, isLargeChannel } from "../domain/fanout.js";

/** The roles a large channel's entry lists (its other members are read one by one). */
export const PRIVILEGED_ROLES = ["owner", "admin"] as const;

export interface ChannelEntry {
  channel: ChannelRecord;
  /**
   * The members: all of them for a small channel; for a large one (`large`) only its owner and
   * admins — the others are looked up one at a time (`MembersCache.memberOf`), never listed.
   */
  members: Map<string, MemberRecord>;
  /** A large channel (the official group, or a group past LARGE_CHANNEL_MEMBERS): see `members`. */
  large: boolean;
  loadedAt: number;
  /** The channel's membership version when this entry was read (0: unknown). */
  version: number;
  /**
   * A large group's whole member list, read once while it is inside its switch window and goes to
   * its members by name (`MembersCache.audience`); it lives and dies with the entry.
   */
  switchWindowMembers?: Promise<string[]>;
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
  /** Large channels' members looked up one at a time: channel → user → record (null: not a member). */
  private readonly single = new Map<
    string,
    Map<string, { member: MemberRecord | null; version: number; at: number }>
  >();
  private singleCount = 0;
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
    const channel = await this.store.getChannel(channelId);
    if (!channel) return null;
    const large = isLargeChannel(channel);
    const members = large
      ? await this.store.listMembersWithRoles(channelId, PRIVILEGED_ROLES)
      : await this.store.listMembers(channelId);
    const entry: ChannelEntry = {
      channel,
      large,
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

  /**
   * Membership or name changed: the next read goes to the store. `users` (a large channel's added or
   * removed members) limits which of its one-by-one lookups are dropped; without it all are.
   */
  invalidate(channelId: string, users?: readonly string[]): void {
    this.entries.delete(channelId);
    if (this.loading.has(channelId)) this.invalidatedDuringLoad.add(channelId);
    const known = this.single.get(channelId);
    if (!known) return;
    if (users === undefined) {
      this.singleCount -= known.size;
      this.single.delete(channelId);
      return;
    }
    for (const u of users) if (known.delete(u)) this.singleCount--;
  }

  /** A membership-change control event: drops what it makes stale (the users it names, if any). */
  invalidateFor(e: MembersChangedEvent): void {
    const named = e.added || e.removed ? [...(e.added ?? []), ...(e.removed ?? [])] : undefined;
    this.invalidate(e.channelId, named);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
    this.single.clear();
    this.singleCount = 0;
  }

  /**
   * A user's member record in the entry's channel, or null. Small channels answer from the entry; a
   * large one from its privileged members, else one cached read per user (dropped when the entry's
   * version moves on, on a control event naming them, and after the TTL).
   */
  async memberOf(entry: ChannelEntry, userId: string): Promise<MemberRecord | null> {
    const listed = entry.members.get(userId);
    if (listed || !entry.large) return listed ?? null;
    const channelId = entry.channel.id;
    const known = this.single.get(channelId)?.get(userId);
    if (known && known.version === entry.version && Date.now() - known.at < this.ttlMs) return known.member;
    const gen = this.generation;
    const member = await this.store.getMember(channelId, userId);
    if (member && PRIVILEGED_ROLES.includes(member.role as (typeof PRIVILEGED_ROLES)[number])) {
      // Promoted since the entry was read: the entry is stale.
      this.invalidate(channelId);
      return member;
    }
    if (gen === this.generation) {
      let m = this.single.get(channelId);
      if (!m) this.single.set(channelId, (m = new Map()));
      if (!m.has(userId)) this.singleCount++;
      m.set(userId, { member, version: entry.version, at: Date.now() });
      if (this.singleCount > this.maxEntries * 10) this.evictSingles();
    }
    return member;
  }

  /**
   * Who an event of the entry's channel goes to: `"channel"` (one publish to the nodes bound to it) for
   * a large channel past its switch (`fanOutRoute`), else its members by id — a large group inside its
   * switch window reads them from the store once per entry, as its entry lists only owner and admins
   * (membership changes drop the entry, and the list with it).
   */
  async audience(entry: ChannelEntry, switchMs: number): Promise<string[] | "channel"> {
    if (fanOutRoute(entry.channel, Date.now(), switchMs) === "channel") return "channel";
    if (!entry.large) return [...entry.members.keys()];
    // Read once per entry, not per message: a group large from its creation sends its first
    // LARGE_CHANNEL_SWITCH_MS of messages this way. A failed read is not kept.
    const listed = (entry.switchWindowMembers ??= this.store
      .listMembers(entry.channel.id)
      .then((ms) => ms.map((m) => m.userId)));
    return listed.catch((err: unknown) => {
      if (entry.switchWindowMembers === listed) delete entry.switchWindowMembers;
      throw err;
    });
  }

  /** Bounds the one-by-one lookups: the oldest channel's go first. */
  private evictSingles(): void {
    for (const [c, m] of this.single) {
      if (this.singleCount <= this.maxEntries * 5) return;
      this.singleCount -= m.size;
      this.single.delete(c);
    }
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
    const member = await this.memberOf(entry, userId);
    if (!member) throw new ProtocolError("FORBIDDEN", "not a member of this channel");
    return { entry, member };
  }
}
