import type { Metrics } from "../metrics.js";
import type { Broker, ChannelStore, MemberStore } from "../ports.js";

/** Large channels besides the official group checked one read each at a connect; more take one query. */
const DIRECT_LOOKUPS = 8;

export interface ChannelBindingsDeps {
  broker: Broker;
  store: MemberStore & ChannelStore;
  /** The official group's id when it is on: every account is a member, so nobody is looked up. */
  officialId: string | null;
  metrics: Metrics;
}

/**
 * Which large channels this node receives, and for whom (docs/chat-node.md, "Large channels"). A large
 * channel's events are published once to `vibetalk.channels` with the channel id as routing key; this
 * node's queue is bound with that key while it holds (binds) at least one member of the channel, so one
 * message costs one delivery per node holding members, and no header names the members (I5).
 *
 * A user's large channels are attached when their user binding is made (before the socket sees
 * `connect`, so its `sync` covers anything published before) and detached when it goes, after the
 * binding grace. UserSessions calls both inside the user's own chain, so one user's attach and detach
 * never overlap.
 */
export class ChannelBindings {
  /** Large channels this node knows of (the official group, groups marked large). */
  private readonly known = new Set<string>();
  /** Large channel → the bound users here who are its members. */
  private readonly holders = new Map<string, Set<string>>();
  /** Bound user → their large channels. */
  private readonly ofUser = new Map<string, Set<string>>();

  constructor(private readonly d: ChannelBindingsDeps) {
    if (d.officialId) this.known.add(d.officialId);
  }

  /** Reads the channels marked large (at start, after a broker reconnect); returns the ones new here. */
  async refresh(): Promise<string[]> {
    const ids = await this.d.store.largeChannelIds();
    const fresh = ids.filter((id) => !this.known.has(id));
    for (const id of fresh) this.known.add(id);
    return fresh;
  }

  /** The large channels known here besides the official group. */
  largeGroups(): string[] {
    return [...this.known].filter((c) => c !== this.d.officialId);
  }

  isLarge(channelId: string): boolean {
    return this.known.has(channelId);
  }

  /** The bound users here who are members of a large channel: the recipients of its deliveries. */
  recipients(channelId: string): string[] {
    return [...(this.holders.get(channelId) ?? [])];
  }

  /**
   * A user is bound here: add them to their large channels. The official group needs no read; up to
   * DIRECT_LOOKUPS other large channels are checked one by one (equality reads), more by one read of
   * the user's memberships, so a connect costs at most one query however many large groups exist.
   */
  async attach(userId: string): Promise<void> {
    const others = this.largeGroups();
    let channels: string[] = [];
    if (others.length > DIRECT_LOOKUPS)
      channels = (await this.d.store.listMemberships(userId))
        .map((m) => m.channelId)
        .filter((c) => this.known.has(c) && c !== this.d.officialId);
    else if (others.length > 0)
      channels = (await this.d.store.membershipsAmong(userId, others)).map((m) => m.channelId);
    if (this.d.officialId) channels.push(this.d.officialId);
    await Promise.all(channels.map((c) => this.add(c, userId)));
  }

  /** A user's binding went: their large channels lose them (a channel with nobody left is unbound). */
  async detach(userId: string): Promise<void> {
    const channels = [...(this.ofUser.get(userId) ?? [])];
    await Promise.all(channels.map((c) => this.remove(c, userId)));
  }

  /** A group just became large: known from now on; true when it was not known before. */
  learn(channelId: string): boolean {
    if (this.known.has(channelId)) return false;
    this.known.add(channelId);
    return true;
  }

  /** The members of a channel among `users` (one read of its members: a group that became large). */
  async membersAmong(channelId: string, users: ReadonlySet<string>): Promise<string[]> {
    if (users.size === 0) return [];
    return (await this.d.store.listMembers(channelId)).map((m) => m.userId).filter((u) => users.has(u));
  }

  /** A bound user here joined a large channel. */
  async join(channelId: string, userId: string): Promise<void> {
    if (this.known.has(channelId)) await this.add(channelId, userId);
  }

  /** A bound user here left a large channel. */
  async leave(channelId: string, userId: string): Promise<void> {
    if (this.ofUser.get(userId)?.has(channelId)) await this.remove(channelId, userId);
  }

  private async add(channelId: string, userId: string): Promise<void> {
    let users = this.ofUser.get(userId);
    if (!users) this.ofUser.set(userId, (users = new Set()));
    users.add(channelId);
    let set = this.holders.get(channelId);
    const first = !set;
    if (!set) this.holders.set(channelId, (set = new Set()));
    set.add(userId);
    if (first) {
      this.d.metrics.boundChannels.set(this.holders.size);
      await this.d.broker.bindChannel(channelId);
    }
  }

  private async remove(channelId: string, userId: string): Promise<void> {
    const users = this.ofUser.get(userId);
    users?.delete(channelId);
    if (users?.size === 0) this.ofUser.delete(userId);
    const set = this.holders.get(channelId);
    if (!set?.delete(userId) || set.size > 0) return;
    this.holders.delete(channelId);
    this.d.metrics.boundChannels.set(this.holders.size);
    await this.d.broker.unbindChannel(channelId);
  }
}
