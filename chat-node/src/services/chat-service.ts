import type { Readable } from "node:stream";
import {
  OFFICIAL_CHANNEL_ID,
  ProtocolError,
  SERVICE_SENDER_ID,
  type AuthReply,
  type BlocksReply,
  type ChangePasswordBody,
  type ChannelChange,
  type ChannelType,
  type ChannelDetailsReply,
  type ChannelsReply,
  type CreateChannelBody,
  type FileInfo,
  foldEvents,
  MENTION_PATTERN,
  type LoginBody,
  type Message,
  type MessageDelete,
  type MessageEdit,
  type MessageReact,
  type MessageSend,
  type MessagesQuery,
  type OfficialPostBody,
  type PostingPolicy,
  type MessagesReply,
  type Presence,
  type ReceiptSend,
  type RegisterBody,
  type Role,
  type SyncRequest,
  type User,
  type UsersQuery,
  type UsersReply,
} from "@vibetalk/protocol";
import type { ChatNodeConfig } from "../config.js";
import {
  compareChannelsByActivity,
  decodeChannelCursor,
  decodeUserCursor,
  encodeChannelCursor,
  encodeUserCursor,
  isAfterCursor,
} from "../domain/cursor.js";
import { fanOutRoute } from "../domain/fanout.js";
import { partitionOf } from "../domain/hashing.js";
import { directChannelId, directChannelUsers } from "../domain/ids.js";
import { toWire, type AcceptedMessage, type StoredMessage } from "../domain/messages.js";
import type { ReceiptCoalescer } from "../domain/receipts.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type {
  Broker,
  ChannelRecord,
  FileRecord,
  MemberRecord,
  NodeEvent,
  MessageStore,
  PresenceStore,
  SessionsEndedEvent,
  Store,
  UserRecord,
} from "../ports.js";
import { endSpan, inject, startSpan } from "../tracing.js";
import { hashPassword, verifyPassword, type Session, type TokenService } from "./auth.js";
import type { ChannelEntry, MembersCache } from "./members-cache.js";
import type { ReceiptCounts } from "./receipt-counts.js";
import { OFFICIAL_ADMIN_ROLES, requireOfficialPoster, type OfficialGroup } from "./official.js";
import { channelView, fileView, memberView, summaryView, userView } from "./views.js";

export interface ChatServiceDeps {
  config: ChatNodeConfig;
  store: Store;
  broker: Broker;
  members: MembersCache;
  receipts: ReceiptCoalescer;
  /** Large channels' receipts, counted for the sender at a bounded rate. */
  receiptCounts?: ReceiptCounts;
  presence: PresenceStore;
  tokens: TokenService;
  metrics: Metrics;
  log: Logger;
  /** The official group, when OFFICIAL_GROUP is on. */
  official: OfficialGroup | null;
}

/** Who acts on the official group over HTTP: a user, or a script holding the service token. */
export type OfficialCaller = { kind: "user"; userId: string } | { kind: "service" };

/** A password hash to compare against when the user does not exist (same cost either way). */
let dummyHash: Promise<string> | null = null;

/**
 * The application layer: every use case of the HTTP API and the Socket.IO gateway, on the ports.
 * Authorisation lives here, so both transports enforce the same rules.
 */
export class ChatService {
  constructor(private readonly d: ChatServiceDeps) {}

  // ---- accounts ----

  async register(body: RegisterBody): Promise<AuthReply> {
    const user = await this.d.store.createUser({
      username: body.username,
      displayName: body.displayName ?? body.username,
      passwordHash: await hashPassword(body.password),
    });
    await this.joinOfficial(user.id);
    return { token: await this.d.tokens.issue(user.id), user: userView(user) };
  }

  async login(body: LoginBody): Promise<AuthReply> {
    const user = await this.d.store.findUserByUsername(body.username.toLowerCase());
    dummyHash ??= hashPassword("not a real password");
    const check = await verifyPassword(body.password, user ? user.passwordHash : await dummyHash);
    if (!user || !check.ok) throw new ProtocolError("UNAUTHENTICATED", "wrong username or password");
    if (check.rehash) {
      // Stored with weaker settings than today's: upgrade now that the password is at hand.
      await this.d.store.setPasswordHash(user.id, await hashPassword(body.password));
      this.d.log.info({ event: "auth.rehashed", userId: user.id }, "password rehashed");
    }
    await this.joinOfficial(user.id, true);
    return { token: await this.d.tokens.issue(user.id), user: userView(user) };
  }

  /**
   * Every account is a member of the official group: joined at registration, and on login when
   * not yet (a registration whose join failed, an account the backfill has not reached). A failure
   * does not fail the request; the next login or the backfill joins them.
   */
  private async joinOfficial(userId: string, onlyIfMissing = false): Promise<void> {
    const official = this.d.official;
    if (!official) return;
    try {
      await (onlyIfMissing ? official.ensureMember(userId) : official.join([userId]));
    } catch (err) {
      this.d.log.warn(
        { event: "official.join_failed", userId, err: (err as Error).message },
        "not joined to the official group yet; the next login or the backfill joins them",
      );
    }
  }

  /** Ends this session everywhere: its token is refused from now on and its sockets are closed. */
  async logout(session: Session): Promise<void> {
    await this.d.tokens.revoke(session);
    await this.announceSessionsEnded({ t: "sessions", userId: session.userId, tokenId: session.tokenId });
  }

  /** New password; every other session of the user ends (its sockets closed), a new token is returned. */
  async changePassword(session: Session, body: ChangePasswordBody): Promise<AuthReply> {
    const user = await this.d.store.getUser(session.userId);
    if (!user) throw new ProtocolError("UNAUTHENTICATED", "the user of this session no longer exists");
    const check = await verifyPassword(body.currentPassword, user.passwordHash);
    if (!check.ok) throw new ProtocolError("FORBIDDEN", "the current password is wrong");
    await this.d.store.setPasswordHash(user.id, await hashPassword(body.newPassword));
    const before = await this.d.tokens.revokeAll(user.id);
    await this.announceSessionsEnded({ t: "sessions", userId: user.id, before });
    return { token: await this.d.tokens.issue(user.id), user: userView(user) };
  }

  /** Tells every node to close the ended sessions' sockets (the tokens are refused already). */
  private async announceSessionsEnded(e: SessionsEndedEvent): Promise<void> {
    try {
      await this.d.broker.publishControl(e);
    } catch (err) {
      // Revoked in Redis already: no request or reconnect gets through; open sockets stay until then.
      this.d.log.warn(
        { event: "auth.sessions_notify_failed", userId: e.userId, err: (err as Error).message },
        "sessions ended, but their sockets could not be told",
      );
    }
  }

  async me(userId: string): Promise<User> {
    const u = await this.d.store.getUser(userId);
    if (!u) throw new ProtocolError("UNAUTHENTICATED", "the user of this session no longer exists");
    return userView(u);
  }

  async searchUsers(query: UsersQuery): Promise<UsersReply> {
    const limit = query.limit ?? this.d.config.limits.defaultPageLimit;
    const after = query.cursor ? decodeUserCursor(query.cursor) : null;
    if (query.cursor && after === null) throw new ProtocolError("INVALID_ARGUMENT", "bad cursor");
    const users = await this.d.store.searchUsers(query.query, after, limit);
    const last = users[users.length - 1];
    return {
      users: users.map(userView),
      nextCursor: users.length === limit && last ? encodeUserCursor(last.username) : null,
    };
  }

  // ---- channels ----

  async createChannel(
    userId: string,
    body: CreateChannelBody,
  ): Promise<{ channel: ChannelRecord; created: boolean }> {
    const now = new Date();
    if (body.type === "direct") {
      if (body.userId === userId)
        throw new ProtocolError("INVALID_ARGUMENT", "a direct channel needs another user");
      const peer = await this.d.store.getUser(body.userId);
      if (!peer) throw new ProtocolError("NOT_FOUND", "no such user");
      const id = directChannelId(userId, body.userId);
      const rec = this.newChannel(id, "direct", null, userId, now, 2);
      const r = await this.d.store.createChannel(rec, [
        this.newMember(id, userId, "member", now),
        this.newMember(id, body.userId, "member", now),
      ]);
      if (r.created) await this.notifyChannel(r.channel, [userId, body.userId], "created");
      return r;
    }
    const memberIds = [...new Set(body.memberIds.filter((m) => m !== userId))];
    if (memberIds.length + 1 > this.d.config.limits.maxGroupMembers) {
      throw new ProtocolError(
        "INVALID_ARGUMENT",
        `a group has at most ${this.d.config.limits.maxGroupMembers} members`,
      );
    }
    await this.requireUsers(memberIds);
    const id = this.d.store.newId();
    const members = [
      this.newMember(id, userId, "owner", now),
      ...memberIds.map((m) => this.newMember(id, m, "member", now)),
    ];
    const large = members.length >= this.d.config.largeChannelMembers;
    const r = await this.d.store.createChannel(
      {
        ...this.newChannel(id, "group", body.name, userId, now, members.length),
        ...(large ? { largeSince: now } : {}),
      },
      members,
    );
    // A group large from the start: every node learns of it, its creation still goes to each member.
    await this.notifyChannel(
      r.channel,
      members.map((m) => m.userId),
      "created",
      large ? { large: true } : {},
    );
    return r;
  }

  private newChannel(
    id: string,
    type: "direct" | "group",
    name: string | null,
    by: string,
    at: Date,
    count: number,
  ): ChannelRecord {
    return {
      id,
      type,
      name,
      createdBy: by,
      createdAt: at,
      lastSeq: 0,
      lastMessage: null,
      lastMessageAt: at,
      memberCount: count,
    };
  }

  private newMember(channelId: string, userId: string, role: Role, at: Date): MemberRecord {
    return { channelId, userId, role, joinedAt: at, lastDeliveredSeq: 0, lastReadSeq: 0 };
  }

  private async requireUsers(ids: readonly string[]): Promise<UserRecord[]> {
    const users = await this.d.store.getUsers(ids);
    if (users.length !== new Set(ids).size) {
      const found = new Set(users.map((u) => u.id));
      throw new ProtocolError("NOT_FOUND", "no such user", { userIds: ids.filter((i) => !found.has(i)) });
    }
    return users;
  }

  async listChannels(
    userId: string,
    cursor: string | undefined,
    limitIn: number | undefined,
  ): Promise<ChannelsReply> {
    const limit = limitIn ?? this.d.config.limits.defaultPageLimit;
    const after = cursor ? decodeChannelCursor(cursor) : null;
    if (cursor && !after) throw new ProtocolError("INVALID_ARGUMENT", "bad cursor");
    const memberships = await this.d.store.listMemberships(userId);
    const byChannel = new Map(memberships.map((m) => [m.channelId, m]));
    const channels = (await this.d.store.getChannels([...byChannel.keys()]))
      .filter((c) => !after || isAfterCursor(c, after))
      .sort(compareChannelsByActivity)
      .slice(0, limit);
    const peerIds = channels
      .map((c) => directChannelUsers(c.id)?.find((u) => u !== userId))
      .filter((u): u is string => !!u);
    const [peerList, mentions] = await Promise.all([
      this.d.store.getUsers(peerIds),
      channels.length > 0 ? this.d.store.mentionsOf(userId) : [],
    ]);
    const peers = new Map(peerList.map((u) => [u.id, u]));
    const out = channels.map((c) => {
      const m = byChannel.get(c.id) as MemberRecord;
      const pending = this.d.receipts.peek(c.id, userId);
      const lastReadSeq = Math.max(m.lastReadSeq, pending?.lastReadSeq ?? 0);
      const marks = {
        role: m.role,
        lastReadSeq,
        lastDeliveredSeq: Math.max(m.lastDeliveredSeq, pending?.lastDeliveredSeq ?? 0),
        muted: m.muted,
        mentions: mentions.filter((x) => x.channelId === c.id && x.seq > lastReadSeq).length,
      };
      const peerId = directChannelUsers(c.id)?.find((u) => u !== userId);
      return summaryView(c, marks, peerId ? (peers.get(peerId) ?? null) : null);
    });
    const last = channels[channels.length - 1];
    return {
      channels: out,
      nextCursor:
        channels.length === limit && last
          ? encodeChannelCursor({ at: last.lastMessageAt.getTime(), id: last.id })
          : null,
    };
  }

  async channelDetails(userId: string, channelId: string): Promise<ChannelDetailsReply> {
    const { entry } = await this.d.members.requireMember(channelId, userId);
    if (entry.channel.type === "official") return this.officialDetails(entry);
    const [channel, members] = await Promise.all([
      this.d.store.getChannel(channelId),
      this.d.store.listMembers(channelId),
    ]);
    if (!channel) throw new ProtocolError("NOT_FOUND", "no such channel");
    const users = new Map((await this.d.store.getUsers(members.map((m) => m.userId))).map((u) => [u.id, u]));
    return { channel: channelView(channel), members: members.map((m) => memberView(m, users.get(m.userId))) };
  }

  /**
   * The official group's details: its owner and admins only as `members` (every account is a
   * member; the count is `memberCount`), the online count (one Redis count, no scan of members),
   * the pinned message and the service sender.
   */
  private async officialDetails(entry: ChannelEntry): Promise<ChannelDetailsReply> {
    const channel = (await this.d.store.getChannel(entry.channel.id)) ?? entry.channel;
    const admins = [...entry.members.values()].filter((m) => OFFICIAL_ADMIN_ROLES.includes(m.role));
    const users = new Map((await this.d.store.getUsers(admins.map((m) => m.userId))).map((u) => [u.id, u]));
    const pinnedSeq = channel.pinnedSeq ?? null;
    const [onlineCount, pinned] = await Promise.all([
      this.d.presence.onlineCount(),
      pinnedSeq === null ? Promise.resolve([]) : this.d.store.messagesAfter(channel.id, pinnedSeq - 1, 1),
    ]);
    const top = pinned[0];
    return {
      channel: channelView(channel),
      members: admins.map((m) => memberView(m, users.get(m.userId))),
      onlineCount,
      pinned: top && top.seq === pinnedSeq ? toWire(top) : null,
      service: { userId: SERVICE_SENDER_ID, displayName: this.d.official?.name ?? channel.name ?? "" },
    };
  }

  /** A group or the official group, and the caller has one of `roles` in it; FORBIDDEN otherwise. */
  private async requireGroupRole(
    userId: string,
    channelId: string,
    rolesFor: readonly Role[] | ((type: ChannelType) => readonly Role[]),
  ) {
    const r = await this.d.members.requireMember(channelId, userId);
    if (r.entry.channel.type === "direct")
      throw new ProtocolError("FORBIDDEN", "a direct channel cannot be changed");
    const roles = typeof rolesFor === "function" ? rolesFor(r.entry.channel.type) : rolesFor;
    if (!roles.includes(r.member.role))
      throw new ProtocolError("FORBIDDEN", `only ${roles.join(" or ")} may do this`);
    return r;
  }

  /** PATCH /channels/:id: the name (groups and the official group), the posting policy (official only). */
  async updateChannel(
    userId: string,
    channelId: string,
    body: { name?: string | undefined; posting?: PostingPolicy | undefined },
  ): Promise<ChannelRecord> {
    const { entry } = await this.requireGroupRole(userId, channelId, ["owner", "admin"]);
    if (body.posting !== undefined && entry.channel.type !== "official") {
      throw new ProtocolError("INVALID_ARGUMENT", "posting is a setting of the official group only", {
        field: "posting",
      });
    }
    if (body.name !== undefined) await this.d.store.renameChannel(channelId, body.name);
    if (body.posting !== undefined)
      await this.d.store.updateChannelSettings(channelId, { posting: body.posting });
    const channel = await this.mustGetChannel(channelId);
    await this.notifyChannel(
      channel,
      await this.everyone(entry),
      body.name !== undefined ? "renamed" : "settings",
    );
    return channel;
  }

  /** Pins a stored message of the official group by seq (null unpins); its owner and admins only. */
  async pin(userId: string, channelId: string, seq: number | null): Promise<ChannelRecord> {
    const { entry } = await this.requireGroupRole(userId, channelId, OFFICIAL_ADMIN_ROLES);
    if (entry.channel.type !== "official")
      throw new ProtocolError("FORBIDDEN", "only the official group has a pinned message");
    if (seq !== null) await this.requireStoredSeq(entry, seq);
    await this.d.store.updateChannelSettings(channelId, { pinnedSeq: seq });
    const channel = await this.mustGetChannel(channelId);
    await this.notifyChannel(channel, await this.everyone(entry), "settings");
    return channel;
  }

  /** INVALID_ARGUMENT unless message `seq` of the entry's channel is stored. */
  private async requireStoredSeq(entry: ChannelEntry, seq: number): Promise<void> {
    if (seq <= entry.channel.lastSeq) return;
    // The cached head may lag behind the newest message; only a seq that is not stored is refused.
    const [m] = await this.d.store.messagesAfter(entry.channel.id, seq - 1, 1, seq + 1);
    if (!m) {
      throw new ProtocolError("INVALID_ARGUMENT", `no message ${seq} in this channel yet`, { field: "seq" });
    }
  }

  async addMembers(userId: string, channelId: string, userIds: string[]): Promise<ChannelDetailsReply> {
    const { entry } = await this.requireGroupRole(userId, channelId, ["owner", "admin"]);
    if (entry.channel.type === "official")
      throw new ProtocolError("FORBIDDEN", "every account is a member of the official group already");
    const asked = [...new Set(userIds)];
    const known = await Promise.all(asked.map((u) => this.d.members.memberOf(entry, u)));
    const fresh = asked.filter((_, i) => !known[i]);
    const count = entry.large ? entry.channel.memberCount : entry.members.size;
    if (count + fresh.length > this.d.config.limits.maxGroupMembers) {
      throw new ProtocolError(
        "INVALID_ARGUMENT",
        `a group has at most ${this.d.config.limits.maxGroupMembers} members`,
      );
    }
    await this.requireUsers(fresh);
    const now = new Date();
    await this.d.store.addMembers(
      channelId,
      fresh.map((u) => this.newMember(channelId, u, "member", now)),
    );
    let channel = await this.mustGetChannel(channelId);
    const becomesLarge = !channel.largeSince && channel.memberCount >= this.d.config.largeChannelMembers;
    if (becomesLarge) {
      await this.d.store.markLarge(channelId, now);
      channel = await this.mustGetChannel(channelId);
    }
    const before = await this.everyone(entry);
    // The new members hear of it by their own bindings: their nodes bind the channel for them after this.
    if (before !== "channel")
      await this.notifyChannel(channel, [...before, ...fresh], "members", {
        added: fresh,
        large: becomesLarge,
      });
    else {
      await this.notifyChannel(channel, "channel", "members", { added: fresh });
      await this.tellUsers(channel, fresh, "members");
    }
    return this.channelDetails(userId, channelId);
  }

  async setRole(
    userId: string,
    channelId: string,
    target: string,
    role: "admin" | "member",
  ): Promise<ChannelDetailsReply> {
    // The official group has no owner account: its admins set roles there, as the service does.
    const { entry } = await this.requireGroupRole(userId, channelId, (type) =>
      type === "official" ? OFFICIAL_ADMIN_ROLES : ["owner"],
    );
    await this.applyRole(entry, target, role);
    return this.channelDetails(userId, channelId);
  }

  /** The service (a script with OFFICIAL_SERVICE_TOKEN) sets a role in the official group. */
  async setOfficialRoleAsService(target: string, role: "admin" | "member"): Promise<void> {
    const entry = await this.d.members.get(OFFICIAL_CHANNEL_ID);
    if (!entry || !this.d.official) throw new ProtocolError("NOT_FOUND", "there is no official group");
    await this.applyRole(entry, target, role);
  }

  private async applyRole(entry: ChannelEntry, target: string, role: "admin" | "member"): Promise<void> {
    const t = await this.d.members.memberOf(entry, target);
    if (!t) throw new ProtocolError("NOT_FOUND", "not a member of this channel");
    if (t.role === "owner") throw new ProtocolError("FORBIDDEN", "the owner's role cannot be changed");
    await this.d.store.setRole(entry.channel.id, target, role);
    const channel = await this.mustGetChannel(entry.channel.id);
    // The official group's roles matter to its admins' clients only: tell the two parties, not everyone.
    const told = channel.type === "official" ? [target] : await this.everyone(entry);
    await this.notifyChannel(channel, told, "members", entry.large ? { added: [target] } : {});
  }

  async removeMember(userId: string, channelId: string, target: string): Promise<void> {
    const { entry, member } = await this.d.members.requireMember(channelId, userId);
    if (entry.channel.type === "official")
      throw new ProtocolError("CANNOT_LEAVE", "nobody leaves the official group or is removed from it");
    if (entry.channel.type !== "group")
      throw new ProtocolError("FORBIDDEN", "nobody leaves a direct channel");
    const t = await this.d.members.memberOf(entry, target);
    if (!t) throw new ProtocolError("NOT_FOUND", "not a member of this channel");
    if (target !== userId) {
      const allowed = member.role === "owner" || (member.role === "admin" && t.role === "member");
      if (!allowed) throw new ProtocolError("FORBIDDEN", "you may not remove this member");
    }
    // A large group's entry lists only its owner and admins: the heir may be any member (at most
    // maxGroupMembers, read once for this rare change).
    const all = entry.large ? await this.d.store.listMembers(channelId) : [...entry.members.values()];
    await this.d.store.removeMember(channelId, target);
    const rest = all.filter((m) => m.userId !== target);
    if (t.role === "owner" && rest.length > 0) {
      const heir = [...rest].sort(
        (a, b) => rankForOwnership(a) - rankForOwnership(b) || a.joinedAt.getTime() - b.joinedAt.getTime(),
      )[0];
      if (heir) await this.d.store.setRole(channelId, heir.userId, "owner");
    }
    const channel = await this.mustGetChannel(channelId);
    const byChannel = fanOutRoute(channel, Date.now(), this.d.config.largeChannelSwitchMs) === "channel";
    await this.notifyChannel(
      channel,
      byChannel ? "channel" : rest.map((m) => m.userId),
      "members",
      entry.large ? { removed: [target] } : {},
    );
    await this.tellUsers(channel, [target], "removed");
  }

  private async mustGetChannel(id: string): Promise<ChannelRecord> {
    const c = await this.d.store.getChannel(id);
    if (!c) throw new ProtocolError("NOT_FOUND", "no such channel");
    return c;
  }

  /**
   * Who hears of a change in the entry's channel: its members by name, or `"channel"` for a large
   * channel past its switch (one publish to the nodes bound to it, docs/chat-node.md "Large channels").
   */
  private everyone(entry: ChannelEntry): Promise<string[] | "channel"> {
    return this.d.members.audience(entry, this.d.config.largeChannelSwitchMs);
  }

  /** A channel event to some users by their own bindings (no control event: the caller sent it). */
  private async tellUsers(channel: ChannelRecord, users: string[], change: ChannelChange): Promise<void> {
    if (users.length === 0) return;
    await this.d.broker
      .publishToUsers({ t: "channel", event: { channel: channelView(channel), change } }, users)
      .catch((err: unknown) =>
        this.d.log.warn(
          { event: "channel.notify_failed", channelId: channel.id, err: (err as Error).message },
          "channel event not published",
        ),
      );
  }

  /**
   * Tells members about a channel change and every node to drop its cached members; for a large
   * channel the control event names the users `added` or `removed` (their nodes bind or unbind the
   * channel for them) and says when it just became `large`.
   */
  private async notifyChannel(
    channel: ChannelRecord,
    recipients: string[] | "channel",
    change: ChannelChange,
    named: { added?: string[]; removed?: string[]; large?: boolean } = {},
  ): Promise<void> {
    try {
      await this.d.members.changed(channel.id);
    } catch (err) {
      this.d.log.warn(
        { event: "channel.version_failed", channelId: channel.id, err: (err as Error).message },
        "membership version not raised; other nodes follow with the control event",
      );
    }
    try {
      await this.d.broker.publishControl({
        t: "members",
        channelId: channel.id,
        origin: this.d.config.nodeId,
        ...(named.added?.length ? { added: named.added } : {}),
        ...(named.removed?.length ? { removed: named.removed } : {}),
        ...(named.large ? { large: true } : {}),
      });
      const event: NodeEvent = { t: "channel", event: { channel: channelView(channel), change } };
      if (recipients === "channel") await this.d.broker.publishToChannel(event, channel.id);
      else await this.d.broker.publishToUsers(event, recipients);
    } catch (err) {
      // The change is stored; caches expire and clients refresh their lists on reconnect.
      this.d.log.warn(
        { event: "channel.notify_failed", channelId: channel.id, err: (err as Error).message },
        "channel event not published",
      );
    }
  }

  // ---- messages ----

  /** A history page, folded (docs/protocol.md, "Conversations"). */
  async messages(userId: string, channelId: string, q: MessagesQuery): Promise<MessagesReply> {
    await this.d.members.requireMember(channelId, userId);
    return historyPage(this.d.store, channelId, q, q.limit ?? this.d.config.limits.defaultPageLimit);
  }

  /** Validated send: membership, files, the quoted message, mentions, then a confirmed publish. */
  async send(userId: string, payload: MessageSend): Promise<void> {
    const { entry, member } = await this.d.members.requireMember(payload.channelId, userId);
    if (entry.channel.type === "official") requireOfficialPoster(entry.channel, member.role);
    await this.requireNotBlocked(entry, userId);
    const fileIds = [...new Set(payload.fileIds ?? [])];
    if (fileIds.length > 0) {
      const files = await this.d.store.getFiles(fileIds);
      const ok =
        files.length === fileIds.length &&
        files.every((f) => f.channelId === payload.channelId && f.uploaderId === userId);
      if (!ok)
        throw new ProtocolError("INVALID_ARGUMENT", "fileIds must be files you uploaded to this channel");
    }
    if (payload.replyTo !== undefined)
      await this.requireTarget(payload.channelId, payload.replyTo, "replyTo");
    const mentions = await this.mentionsIn(entry, payload.body);
    await this.publish({
      channelId: payload.channelId,
      senderId: userId,
      clientMsgId: payload.clientMsgId,
      body: payload.body,
      fileIds,
      sentAt: Date.now(),
      ...(payload.replyTo !== undefined ? { replyTo: payload.replyTo } : {}),
      ...(mentions.length > 0 ? { mentions } : {}),
    });
  }

  /** The author edits their plain message within the edit window (LIMIT_EDIT_WINDOW_SECONDS). */
  async edit(userId: string, p: MessageEdit): Promise<void> {
    const { entry } = await this.d.members.requireMember(p.channelId, userId);
    await this.requireNotBlocked(entry, userId);
    const { target, deletedBy } = await this.requireTarget(p.channelId, p.targetSeq, "targetSeq");
    if (deletedBy) throw deletedError(p.targetSeq);
    if (target.senderId !== userId) throw new ProtocolError("FORBIDDEN", "only the author edits a message");
    const windowMs = this.d.config.limits.editWindowSeconds * 1000;
    if (Date.now() - target.createdAt.getTime() > windowMs) {
      throw new ProtocolError(
        "EDIT_WINDOW_CLOSED",
        `a message can be edited for ${this.d.config.limits.editWindowSeconds} s after it was sent`,
      );
    }
    const mentions = await this.mentionsIn(entry, p.body);
    await this.publish({
      ...this.eventBase(userId, p),
      kind: "edit",
      body: p.body,
      ...(mentions.length > 0 ? { mentions } : {}),
    });
  }

  /**
   * Posts to the official group as the service (sender SERVICE_SENDER_ID), through the partition
   * like any message (durable once this resolves, ordered by seq, idempotent by clientMsgId:
   * I1–I3). The caller is the service token's holder, or an owner or admin of the group.
   */
  async postAsService(caller: OfficialCaller, body: OfficialPostBody): Promise<void> {
    if (caller.kind === "user") {
      await this.requireGroupRole(caller.userId, OFFICIAL_CHANNEL_ID, OFFICIAL_ADMIN_ROLES);
    } else {
      // One document read: the posting node needs no member list (the partition owner fans out).
      const exists =
        this.d.official !== null && (await this.d.store.getChannel(OFFICIAL_CHANNEL_ID)) !== null;
      if (!exists) throw new ProtocolError("NOT_FOUND", "there is no official group");
    }
    await this.publish({
      channelId: OFFICIAL_CHANNEL_ID,
      senderId: SERVICE_SENDER_ID,
      clientMsgId: body.clientMsgId,
      body: body.body,
      fileIds: [],
      sentAt: Date.now(),
    });
  }

  /**
   * The author, or a group's owner or admin, deletes a plain message. Its content leaves the store
   * before the tombstone is published and acked (docs/protocol.md, "Conversations"); a retry with the
   * same clientMsgId is acked again.
   */
  async delete(userId: string, p: MessageDelete): Promise<void> {
    const { entry, member } = await this.d.members.requireMember(p.channelId, userId);
    const { target, deletedBy } = await this.requireTarget(p.channelId, p.targetSeq, "targetSeq");
    if (deletedBy) {
      if (deletedBy.senderId === userId && deletedBy.clientMsgId === p.clientMsgId) return;
      throw deletedError(p.targetSeq);
    }
    const moderator = entry.channel.type === "group" && (member.role === "owner" || member.role === "admin");
    if (target.senderId !== userId && !moderator)
      throw new ProtocolError("FORBIDDEN", "only the author or a group admin deletes a message");
    await this.d.store.scrubDeleted(p.channelId, p.targetSeq);
    await this.publish({ ...this.eventBase(userId, p), kind: "delete", body: "" });
  }

  /** A member adds (`on`) or removes their reaction with an emoji to a plain message. */
  async react(userId: string, p: MessageReact): Promise<void> {
    const { entry } = await this.d.members.requireMember(p.channelId, userId);
    await this.requireNotBlocked(entry, userId);
    const { deletedBy } = await this.requireTarget(p.channelId, p.targetSeq, "targetSeq");
    if (deletedBy) throw deletedError(p.targetSeq);
    await this.publish({
      ...this.eventBase(userId, p),
      kind: "reaction",
      body: "",
      emoji: p.emoji,
      on: p.on,
    });
  }

  /** In a direct channel: BLOCKED when either user blocks the other (deleting one's messages stays allowed). */
  private async requireNotBlocked(entry: ChannelEntry, userId: string): Promise<void> {
    if (entry.channel.type !== "direct") return;
    const peer = directChannelUsers(entry.channel.id)?.find((u) => u !== userId);
    if (peer && (await this.d.store.isBlockedBetween(userId, peer)))
      throw new ProtocolError("BLOCKED", "one of you blocks the other: no direct messages");
  }

  // ---- blocks and mutes ----

  async blocks(userId: string): Promise<BlocksReply> {
    const list = await this.d.store.blocksOf(userId);
    return { blocks: list.map((b) => ({ userId: b.userId, createdAt: b.createdAt.toISOString() })) };
  }

  /** Blocks or unblocks another user (who must exist); idempotent. */
  async setBlocked(userId: string, other: string, on: boolean): Promise<void> {
    if (other === userId) throw new ProtocolError("INVALID_ARGUMENT", "you cannot block yourself");
    if (on) await this.requireUsers([other]);
    await this.d.store.setBlocked(userId, other, on);
    if (!on) return;
    // Presence subscriptions taken before the block end on every node (new ones are refused).
    try {
      await this.d.broker.publishControl({ t: "blocked", a: userId, b: other });
    } catch (err) {
      this.d.log.warn(
        { event: "blocks.notify_failed", userId, err: (err as Error).message },
        "blocked, but the nodes could not be told to end the presence subscriptions",
      );
    }
  }

  /** A member mutes or unmutes a channel: unread is counted all the same, the summary says `muted`. */
  async setMuted(userId: string, channelId: string, muted: boolean): Promise<void> {
    await this.d.members.requireMember(channelId, userId);
    await this.d.store.setMuted(channelId, userId, muted);
  }

  private eventBase(
    userId: string,
    p: { channelId: string; clientMsgId: string; targetSeq: number },
  ): AcceptedMessage {
    return {
      channelId: p.channelId,
      senderId: userId,
      clientMsgId: p.clientMsgId,
      body: "",
      fileIds: [],
      sentAt: Date.now(),
      targetSeq: p.targetSeq,
    };
  }

  /**
   * The plain message at `seq` and who deleted it (if anyone): NOT_FOUND when there is none,
   * INVALID_ARGUMENT when it is an edit, delete or reaction. Two reads (the message, its events).
   */
  private async requireTarget(
    channelId: string,
    seq: number,
    field: "replyTo" | "targetSeq",
  ): Promise<{ target: StoredMessage; deletedBy: StoredMessage | undefined }> {
    const [target, events] = await Promise.all([
      this.d.store.messageAt(channelId, seq),
      this.d.store.eventsTargeting(channelId, [seq]),
    ]);
    if (!target) throw new ProtocolError("NOT_FOUND", `no message ${seq} in this channel`, { field });
    if (target.kind !== undefined) {
      throw new ProtocolError("INVALID_ARGUMENT", `${field} must be a plain message, not a ${target.kind}`, {
        field,
      });
    }
    const deletedBy = events.find((e) => e.kind === "delete");
    if (deletedBy && field === "replyTo") throw deletedError(seq, field);
    return { target, deletedBy };
  }

  /** Members named by `@username` in a body (at most MAX_MENTIONS names are looked up). */
  private async mentionsIn(entry: ChannelEntry, body: string): Promise<string[]> {
    const names = [
      ...new Set([...body.matchAll(MENTION_PATTERN)].map((m) => (m[1] as string).toLowerCase())),
    ];
    if (names.length === 0) return [];
    const users = await Promise.all(
      names.slice(0, MAX_MENTIONS).map((n) => this.d.store.findUserByUsername(n)),
    );
    const found = [...new Set(users.filter((u): u is UserRecord => u !== null).map((u) => u.id))];
    const members = await Promise.all(found.map((u) => this.d.members.memberOf(entry, u)));
    return found.filter((_, i) => members[i]);
  }

  /** A confirmed publish to the channel's partition (UNAVAILABLE when the broker cannot confirm). */
  private async publish(accepted: AcceptedMessage): Promise<void> {
    const partition = partitionOf(accepted.channelId, this.d.config.partitions);
    const span = startSpan("message.send", undefined, {
      "vibetalk.channel": accepted.channelId,
      "vibetalk.partition": partition,
    });
    try {
      // A broker that cannot confirm rejects with DependencyUnavailableError: UNAVAILABLE, retried.
      await this.d.broker.publishToPartition(partition, accepted, inject(span));
      endSpan(span);
    } catch (err) {
      endSpan(span, err);
      throw err;
    }
    this.d.metrics.messagesAccepted.inc();
  }

  async receipt(userId: string, r: ReceiptSend): Promise<void> {
    const { entry } = await this.d.members.requireMember(r.channelId, userId);
    await this.requireStoredSeq(entry, r.seq);
    if (!this.d.receipts.record(r.channelId, userId, r.kind, r.seq)) return;
    // Kept for the member's unread count; a large channel's sender gets counts, not every receipt.
    if (entry.large) {
      this.d.receiptCounts?.note(r.channelId, r.seq);
      return;
    }
    const recipients = [...entry.members.keys()];
    await this.d.broker.publishToUsers(
      { t: "receipt", receipt: { channelId: r.channelId, userId, kind: r.kind, seq: r.seq } },
      recipients,
    );
  }

  async sync(userId: string, req: SyncRequest): Promise<{ messages: Message[]; more: string[] }> {
    const perChannel = this.d.config.limits.maxPageLimit;
    let budget = this.d.config.limits.maxSyncMessages;
    for (const c of req.channels) await this.d.members.requireMember(c.channelId, userId);
    const messages: Message[] = [];
    const more: string[] = [];
    for (const c of req.channels) {
      const take = Math.min(perChannel, budget);
      if (take <= 0) {
        more.push(c.channelId);
        continue;
      }
      const page = await this.d.store.messagesAfter(c.channelId, c.afterSeq, take + 1);
      if (page.length > take) more.push(c.channelId);
      const kept = page.slice(0, take);
      budget -= kept.length;
      messages.push(...kept.map(toWire));
    }
    return { messages, more };
  }

  /**
   * Presence is shared only between users who share a channel: FORBIDDEN, naming them, for any
   * other; BLOCKED, naming them, for users of whom one blocks the other (two reads). A direct
   * channel is checked through the members cache; otherwise memberships are read.
   */
  async requireContacts(userId: string, others: readonly string[]): Promise<void> {
    const targets = [...new Set(others)].filter((u) => u !== userId);
    if (targets.length === 0) return;
    const [blocks, blockers] = await Promise.all([
      this.d.store.blocksOf(userId),
      this.d.store.blockersOf(userId),
    ]);
    const either = new Set([...blocks.map((b) => b.userId), ...blockers]);
    const blockedIds = targets.filter((u) => either.has(u));
    if (blockedIds.length > 0) {
      throw new ProtocolError("BLOCKED", "no presence between users of whom one blocks the other", {
        userIds: blockedIds,
      });
    }
    const direct = await Promise.all(
      targets.map(async (u) => (await this.d.members.get(directChannelId(userId, u)))?.members.has(userId)),
    );
    const rest = targets.filter((_, i) => !direct[i]);
    if (rest.length === 0) return;
    // The official group is shared by every account: it makes nobody a contact (docs/security.md).
    const mine = new Set(
      (await this.d.store.listMemberships(userId))
        .map((m) => m.channelId)
        .filter((c) => c !== OFFICIAL_CHANNEL_ID),
    );
    const shared = await Promise.all(
      rest.map(async (u) => (await this.d.store.listMemberships(u)).some((m) => mine.has(m.channelId))),
    );
    const strangers = rest.filter((_, i) => !shared[i]);
    if (strangers.length > 0) {
      throw new ProtocolError("FORBIDDEN", "presence is shared only with users you share a channel with", {
        userIds: strangers,
      });
    }
  }

  async presenceOf(userIds: readonly string[]): Promise<Presence[]> {
    const states = await this.d.presence.get(userIds);
    const missing = states.filter((s) => !s.online && !s.lastSeenAt).map((s) => s.userId);
    const fromStore = new Map((await this.d.store.getUsers(missing)).map((u) => [u.id, u.lastSeenAt]));
    return states.map((s) => {
      const seen = s.lastSeenAt ?? fromStore.get(s.userId) ?? null;
      return { userId: s.userId, online: s.online, lastSeenAt: seen ? seen.toISOString() : null };
    });
  }

  // ---- files ----

  async upload(
    userId: string,
    channelId: string,
    name: string,
    contentType: string,
    content: Readable,
  ): Promise<FileRecord> {
    await this.d.members.requireMember(channelId, userId);
    const type = contentType.toLowerCase().split(";")[0]?.trim() ?? "";
    if (!this.d.config.fileTypes.includes(type)) {
      content.resume();
      throw new ProtocolError("INVALID_ARGUMENT", `content type ${type || "(none)"} is not allowed`, {
        allowed: this.d.config.fileTypes,
      });
    }
    const safeName =
      [...name]
        .map((c) => (c.charCodeAt(0) < 32 || c === "/" || c === "\\" ? "_" : c))
        .join("")
        .slice(0, 200) || "file";
    return this.d.store.saveFile(
      { channelId, uploaderId: userId, name: safeName, contentType: type },
      content,
    );
  }

  async fileFor(userId: string, fileId: string): Promise<FileInfo> {
    const f = await this.d.store.getFile(fileId);
    if (!f) throw new ProtocolError("NOT_FOUND", "no such file");
    await this.d.members.requireMember(f.channelId, userId);
    return fileView(f);
  }
}

/**
 * A history page, folded: the events of the seq range, then in one more read (one or two queries)
 * the edits, deletes and reactions that target its plain messages wherever they are (docs/decisions.md, 41).
 */
export async function historyPage(
  store: MessageStore,
  channelId: string,
  q: { afterSeq?: number | undefined; beforeSeq?: number | undefined },
  limit: number,
): Promise<MessagesReply> {
  // With a bound the range is known before the page is read: both reads go at once.
  const range =
    q.afterSeq !== undefined
      ? seqRange(q.afterSeq + 1, Math.min(q.afterSeq + limit, (q.beforeSeq ?? Infinity) - 1))
      : q.beforeSeq !== undefined
        ? seqRange(Math.max(1, q.beforeSeq - limit), q.beforeSeq - 1)
        : null;
  const early = range && range.length > 0 ? store.eventsTargeting(channelId, range) : null;
  early?.catch(() => undefined); // awaited below; a rejection is not unhandled meanwhile
  const page =
    q.afterSeq !== undefined
      ? await store.messagesAfter(channelId, q.afterSeq, limit, q.beforeSeq)
      : await store.messagesBefore(channelId, q.beforeSeq ?? null, limit);
  const plain = new Set(page.filter((m) => m.kind === undefined).map((m) => m.seq));
  const inPage = new Set(page.map((m) => m.seq));
  const targeting = plain.size === 0 ? [] : await (early ?? store.eventsTargeting(channelId, [...plain]));
  const events = targeting.filter((e) => plain.has(e.targetSeq as number));
  const all = [...page, ...events.filter((e) => !inPage.has(e.seq))];
  return {
    messages: foldEvents(all.map(toWire)),
    fromSeq: page[0]?.seq ?? 0,
    toSeq: page[page.length - 1]?.seq ?? 0,
  };
}

function seqRange(from: number, to: number): number[] {
  return to < from ? [] : Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** At most this many distinct `@username`s of one body are looked up. */
const MAX_MENTIONS = 20;

function deletedError(seq: number, field: "replyTo" | "targetSeq" = "targetSeq"): ProtocolError {
  return new ProtocolError("MESSAGE_DELETED", `message ${seq} was deleted`, { field });
}

function rankForOwnership(m: MemberRecord): number {
  return m.role === "admin" ? 0 : 1;
}
