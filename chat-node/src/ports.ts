/**
 * Ports: what the chat logic needs from the outside world (docs/chat-node.md#layout). RabbitMQ, Redis and
 * MongoDB live in thin adapters under `adapters/`; the domain and the services only see these.
 */
import type { Readable } from "node:stream";
import type {
  ChannelEvent,
  ChannelType,
  Message,
  PostingPolicy,
  MessageFailedEvent,
  ReceiptCountsEvent,
  ReceiptEvent,
  Role,
} from "@vibetalk/protocol";
import type { AcceptedMessage, StoredMessage } from "./domain/messages.js";
import type { ReceiptMarks } from "./domain/receipts.js";
import type { SequenceStore } from "./domain/sequencing.js";

// ---- errors -----------------------------------------------------------------------------------

/** The server behind a port. */
export type Dependency = "store" | "broker" | "redis";

/**
 * A port's server cannot be reached or cannot answer now (down, failing over, blocking, timing
 * out). Every adapter rejects with this type (or a subclass) for such failures and with nothing
 * else for them, so callers and the transports map it by type: clients get `UNAVAILABLE` and retry
 * (docs/protocol.md). The driver's error, when there is one, is the `cause`.
 */
export class DependencyUnavailableError extends Error {
  constructor(
    readonly dependency: Dependency,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "DependencyUnavailableError";
  }
}

// ---- store ------------------------------------------------------------------------------------

export interface UserRecord {
  id: string;
  username: string;
  displayName: string;
  passwordHash: string;
  createdAt: Date;
  lastSeenAt: Date | null;
}

export interface LastMessageRecord {
  seq: number;
  senderId: string;
  body: string;
  hasFiles: boolean;
  createdAt: Date;
  /** The message was deleted (body empty). */
  deleted?: boolean;
  /** The message was edited (the body is the edit's). */
  edited?: boolean;
  /** The seq of the edit the body is from. */
  editSeq?: number;
}

export interface ChannelRecord {
  id: string;
  type: ChannelType;
  name: string | null;
  createdBy: string;
  createdAt: Date;
  lastSeq: number;
  lastMessage: LastMessageRecord | null;
  lastMessageAt: Date;
  memberCount: number;
  /** The official group only: who may post (set at creation from config, then by its admins). */
  posting?: PostingPolicy;
  /** The official group only: the pinned message's seq, null when none. */
  pinnedSeq?: number | null;
  /**
   * When the group reached the large-channel threshold (docs/chat-node.md, "Large channels"); absent
   * while it is small. Once set it stays: a channel never goes back to per-member fan-out.
   */
  largeSince?: Date | null;
}

/** What the official group's admins change in place (docs/chat-node.md, "The official group"). */
export interface ChannelSettings {
  posting?: PostingPolicy;
  pinnedSeq?: number | null;
}

export interface MemberRecord {
  channelId: string;
  userId: string;
  role: Role;
  joinedAt: Date;
  lastDeliveredSeq: number;
  lastReadSeq: number;
  /** The member muted the channel (PUT /channels/:id/mute); absent is false. */
  muted?: boolean;
}

export interface FileRecord {
  id: string;
  channelId: string;
  uploaderId: string;
  name: string;
  size: number;
  contentType: string;
  createdAt: Date;
}

/**
 * The head of a channel after a stored batch: raises `lastSeq` and the preview if newer. An edit,
 * delete or reaction raises `lastSeq` only (`lastMessage` null: the preview and `lastMessageAt` stay).
 */
export interface ChannelHead {
  channelId: string;
  lastSeq: number;
  lastMessage: LastMessageRecord | null;
}

/** Accounts: users by id and username, their password hashes and last seen. */
export interface UserStore {
  createUser(u: { username: string; displayName: string; passwordHash: string }): Promise<UserRecord>;
  findUserByUsername(username: string): Promise<UserRecord | null>;
  getUser(id: string): Promise<UserRecord | null>;
  getUsers(ids: readonly string[]): Promise<UserRecord[]>;
  /** Users whose username starts with `prefix`, after `after`, sorted by username. */
  searchUsers(prefix: string, after: string | null, limit: number): Promise<UserRecord[]>;
  setLastSeen(userId: string, at: Date): Promise<void>;
  setPasswordHash(userId: string, passwordHash: string): Promise<void>;
  /** The ids of the first `limit` users with an id above `after` (all when null), ascending. */
  userIdsAfter(after: string | null, limit: number): Promise<string[]>;
}

/** Channels and their heads (last seq and preview). */
export interface ChannelStore {
  /** A fresh id for a record the caller creates (a group channel), in the store's own id format. */
  newId(): string;
  /** Inserts a channel and its members; a channel that exists already is returned as it is. */
  createChannel(
    channel: ChannelRecord,
    members: readonly MemberRecord[],
  ): Promise<{ channel: ChannelRecord; created: boolean }>;
  getChannel(id: string): Promise<ChannelRecord | null>;
  getChannels(ids: readonly string[]): Promise<ChannelRecord[]>;
  renameChannel(id: string, name: string): Promise<void>;
  /** Sets the given settings (posting policy, pinned seq) of a channel. */
  updateChannelSettings(id: string, settings: ChannelSettings): Promise<void>;
  /** A backfill's resume point kept on the channel: the last user id it covered, null before any. */
  backfillMark(id: string): Promise<string | null>;
  /** Moves the resume point forward to `userId`; a mark already at or past it is kept (forward only). */
  raiseBackfillMark(id: string, userId: string): Promise<void>;
  /** Raises each channel's `lastSeq` / preview, once per channel per stored batch. */
  raiseChannelHeads(heads: readonly ChannelHead[]): Promise<void>;
  /** Marks a channel large at `at` unless it is already (the first mark stays). */
  markLarge(id: string, at: Date): Promise<void>;
  /** The ids of the channels marked large. */
  largeChannelIds(): Promise<string[]>;
}

/** Members of channels: roles and receipt marks. */
export interface MemberStore {
  listMembers(channelId: string): Promise<MemberRecord[]>;
  listMemberships(userId: string): Promise<MemberRecord[]>;
  getMember(channelId: string, userId: string): Promise<MemberRecord | null>;
  /** The user's member records among `channelIds` (one read). */
  membershipsAmong(userId: string, channelIds: readonly string[]): Promise<MemberRecord[]>;
  /** The members of a channel whose role is one of `roles` (its owner and admins). */
  listMembersWithRoles(channelId: string, roles: readonly Role[]): Promise<MemberRecord[]>;
  /** Adds members (existing ones are left as they are) and refreshes the member count. */
  addMembers(channelId: string, members: readonly MemberRecord[]): Promise<void>;
  /** Removes a member and refreshes the member count; false when they were not one. */
  removeMember(channelId: string, userId: string): Promise<boolean>;
  setRole(channelId: string, userId: string, role: Role): Promise<void>;
  /**
   * How many members other than `except` have `seq` delivered (a delivered or read mark at or past it)
   * and read: a large channel's receipt counts (docs/chat-node.md, "Large channels").
   */
  countReceipts(channelId: string, seq: number, except: string): Promise<{ delivered: number; read: number }>;
  /** Raises receipt high-water marks with `$max` (in small batches). */
  raiseReceipts(marks: readonly ReceiptMarks[]): Promise<void>;
  setMuted(channelId: string, userId: string, muted: boolean): Promise<void>;
}

/** Who is mentioned where: written by the partition owner, counted for the recent-chats list. */
export interface MentionStore {
  /** Records that `userIds` are mentioned by the plain message at `seq` (repeats are ignored). */
  addMentions(channelId: string, seq: number, userIds: readonly string[]): Promise<void>;
  /** Every mention of a user still stored (a deleted message's are removed). */
  mentionsOf(userId: string): Promise<Array<{ channelId: string; seq: number }>>;
}

/** Blocks between users: no direct messages and no presence either way. */
export interface BlockStore {
  /** Blocks (`on`) or unblocks; idempotent. */
  setBlocked(blocker: string, blocked: string, on: boolean): Promise<void>;
  /** The users `blocker` blocks, oldest first. */
  blocksOf(blocker: string): Promise<Array<{ userId: string; createdAt: Date }>>;
  /** The users who block `blocked`. */
  blockersOf(blocked: string): Promise<string[]>;
  /** True when either of the two blocks the other. */
  isBlockedBetween(a: string, b: string): Promise<boolean>;
}

/** Where a push notification goes (docs/chat-node.md, "Push notifications"). */
export type PushTarget =
  | { kind: "gateway"; pushKey: string; appId: string }
  | { kind: "webpush"; endpoint: string; p256dh: string; auth: string };

export type PushDeviceRecord = PushTarget & { id: string; userId: string; createdAt: Date };

/** Push devices registered by clients, at most a bound per user. */
export interface PushDeviceStore {
  /**
   * Registers a device. The same key (pushKey and appId, or endpoint) again for the same user returns
   * the stored device (`created` false); null when the user has `max` devices already.
   */
  addPushDevice(
    userId: string,
    target: PushTarget,
    max: number,
  ): Promise<{ device: PushDeviceRecord; created: boolean } | null>;
  /** The devices of these users, oldest first. */
  pushDevicesOf(userIds: readonly string[]): Promise<PushDeviceRecord[]>;
  /** Removes a user's device; false when they have none with that id. */
  removePushDevice(userId: string, id: string): Promise<boolean>;
}

/** Messages: the consumer's sequencing (SequenceStore) and history pages. */
export interface MessageStore extends SequenceStore {
  /** The newest message of a channel. */
  lastMessage(channelId: string): Promise<StoredMessage | null>;
  /** Messages with `afterSeq < seq < beforeSeq` in ascending order, the first `limit`. */
  messagesAfter(
    channelId: string,
    afterSeq: number,
    limit: number,
    beforeSeq?: number,
  ): Promise<StoredMessage[]>;
  /** The last `limit` messages with `seq < beforeSeq` (all when null), in ascending order. */
  messagesBefore(channelId: string, beforeSeq: number | null, limit: number): Promise<StoredMessage[]>;
  /** The message or event stored at `seq`, if any. */
  messageAt(channelId: string, seq: number): Promise<StoredMessage | null>;
  /** The edits, deletes and reactions whose `targetSeq` is one of `seqs`, ascending by seq (a bounded number of queries). */
  eventsTargeting(channelId: string, seqs: readonly number[]): Promise<StoredMessage[]>;
  /**
   * A deleted message's content leaves the store: the body, files and mentions of the message at
   * `targetSeq`, the bodies and mentions of its edits, and the channel's preview when it is that
   * message (which then says `deleted`), and its mentions. Idempotent; the one update of messages
   * (docs/architecture.md#storage).
   */
  scrubDeleted(channelId: string, targetSeq: number): Promise<void>;
  /**
   * An edit of the message at `targetSeq` reaches the channel's preview when the preview is that
   * message (its body replaced by `preview`, `edited` set) and no later edit (`editSeq`) is there
   * yet; otherwise nothing changes. Idempotent, and a redelivered older edit changes nothing.
   */
  reviseHead(channelId: string, targetSeq: number, editSeq: number, preview: string): Promise<void>;
}

/** Uploaded files: metadata and bytes. */
export interface FileStore {
  saveFile(meta: Omit<FileRecord, "id" | "size" | "createdAt">, content: Readable): Promise<FileRecord>;
  getFile(id: string): Promise<FileRecord | null>;
  getFiles(ids: readonly string[]): Promise<FileRecord[]>;
  openFile(id: string): Readable;
  deleteFile(id: string): Promise<void>;
}

/**
 * The store, by concern: a part of the node that needs one concern takes that port (MembersCache a
 * ChannelStore and MemberStore, ReceiptFlusher a MemberStore); one adapter (MongoStore) and one fake
 * (MemoryStore) implement them all.
 */
export interface Store
  extends
    UserStore,
    ChannelStore,
    MemberStore,
    MessageStore,
    MentionStore,
    BlockStore,
    PushDeviceStore,
    FileStore {
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

// ---- broker -----------------------------------------------------------------------------------

/** Trace context carried in message headers (W3C `traceparent`, `tracestate`). */
export type TraceCarrier = Record<string, string>;

export interface PartitionDelivery {
  /** The parsed message, or null when the payload was malformed. */
  message: AcceptedMessage | null;
  trace: TraceCarrier;
  redelivered: boolean;
  /** Times the broker got it back unacked before (`x-delivery-count`; 0 on the first delivery). */
  deliveryCount: number;
  /** The delivery as received, for parking it unchanged. */
  raw: RawMessage;
  ack(): void;
}

/** A broker message as it was published: body, headers and message id. */
export interface RawMessage {
  content: Buffer;
  headers: Record<string, unknown>;
  messageId: string | undefined;
}

/** Why a message is parked (`x-parked-reason`). */
export type ParkReason = "refused" | "attempts" | "deliveries" | "malformed";

/** A message set aside in the parked queue instead of being stored (docs/architecture.md#the-message-path). */
export interface ParkRequest {
  partition: number;
  raw: RawMessage;
  reason: ParkReason;
  /** The last error, one line. */
  error: string;
  /** Store attempts made in this process (0 when it was parked without trying). */
  attempts: number;
  deliveryCount: number;
}

export interface PartitionSubscription {
  /** Stops deliveries (basic.cancel); deliveries already received stay valid for ack. */
  cancel(): Promise<void>;
  /** Closes the channel: every unacked delivery goes back to the queue, in order. */
  close(): Promise<void>;
  /** Resolves when the channel closed for any reason (broker failure included). */
  readonly closed: Promise<void>;
}

/** An event for recipients' nodes, carried over the user exchanges. */
export type NodeEvent =
  | { t: "message"; message: Message; sentAt: number }
  | { t: "receipt"; receipt: ReceiptEvent }
  | { t: "receiptCounts"; counts: ReceiptCountsEvent }
  | { t: "channel"; event: ChannelEvent }
  | { t: "failed"; failed: MessageFailedEvent };

/** Cluster-wide control events (every node). */
/** Sessions that ended (logout: one token; password change: every token issued before `before`, ms). */
export type SessionsEndedEvent = { t: "sessions"; userId: string; tokenId?: string; before?: number };
/** A block was set between two users: every node drops their presence subscriptions to each other. */
export type BlockedEvent = { t: "blocked"; a: string; b: string };
/**
 * A channel's members changed: nodes drop their cached entry. For a large channel `added` / `removed`
 * name the users (so nodes holding them bind or unbind the channel); `large` says it just became one.
 */
export type MembersChangedEvent = {
  t: "members";
  channelId: string;
  origin: string;
  added?: string[];
  removed?: string[];
  large?: boolean;
};
export type ControlEvent = MembersChangedEvent | SessionsEndedEvent | BlockedEvent;

export interface NodeDelivery {
  event: NodeEvent;
  /** The users it is for; empty when it came by a channel binding (then `channel` names it). */
  recipients: string[];
  /** Set when it came through the channels exchange: every member this node holds is a recipient. */
  channel?: string;
  trace: TraceCarrier;
}

export interface Broker {
  /** Publishes persistently to a partition; resolves once the broker confirmed it. */
  publishToPartition(partition: number, message: AcceptedMessage, trace: TraceCarrier): Promise<void>;
  /** Publishes an event to the recipients' nodes; resolves (with the publish count) once confirmed. */
  publishToUsers(event: NodeEvent, recipients: readonly string[], trace?: TraceCarrier): Promise<number>;
  publishControl(event: ControlEvent): Promise<void>;
  /**
   * Publishes an event once to the nodes bound to a large channel (one delivery per such node,
   * whatever the member count); resolves once confirmed. No node bound is not an error.
   */
  publishToChannel(event: NodeEvent, channelId: string, trace?: TraceCarrier): Promise<void>;
  subscribePartition(
    partition: number,
    prefetch: number,
    onDelivery: (d: PartitionDelivery) => void,
  ): Promise<PartitionSubscription>;
  /** Queue depth of a partition (ready messages), for the lag metric. */
  partitionDepth(partition: number): Promise<number>;
  /** Publishes a message to the parked queue; resolves once the broker confirmed it. */
  park(request: ParkRequest): Promise<void>;
  /** Messages in the parked queue. */
  parkedDepth(): Promise<number>;
  /** True while RabbitMQ blocks this node's publishes (memory or disk alarm). */
  isBlocked(): boolean;
  /** Makes this node receive a user's events (idempotent). */
  bindUser(userId: string): Promise<void>;
  unbindUser(userId: string): Promise<void>;
  /** This node gets a large channel's events while bound (kept across reconnects). */
  bindChannel(channelId: string): Promise<void>;
  unbindChannel(channelId: string): Promise<void>;
  /** Starts consuming this node's queue. */
  onNodeEvent(handler: (d: NodeDelivery) => void): void;
  onControlEvent(handler: (e: ControlEvent) => void): void;
  /** Called after every (re)connection once the topology is back (partition consumers resubscribe). */
  onReconnect(handler: () => void): void;
  isConnected(): boolean;
  close(): Promise<void>;
}

// ---- presence ---------------------------------------------------------------------------------

export interface PresenceState {
  userId: string;
  online: boolean;
  lastSeenAt: Date | null;
}

/**
 * Presence as one lease per node (docs/chat-node.md#presence): a node vouches for the users it holds
 * while its lease is live, so holding a user costs one write when they join and one when they leave,
 * and renewing the lease costs one write whatever the node holds.
 */
export interface PresenceStore {
  /** This node now holds these users; returns those that were offline before. */
  join(userIds: readonly string[]): Promise<string[]>;
  /**
   * Renews this node's lease (one write). When the lease had lapsed (the server lost it, or the node
   * stalled past the TTL) it joins `held()` again and returns the users that came online by it.
   */
  renew(held: () => readonly string[]): Promise<string[]>;
  /** This node no longer holds the user; returns their state afterwards (offline unless another node holds them). */
  leave(userId: string, at: Date): Promise<PresenceState>;
  get(userIds: readonly string[]): Promise<PresenceState[]>;
  /** Users online now on any node (the official group's online count: every account is a member). */
  onlineCount(): Promise<number>;
  ping(): Promise<boolean>;
}

/** A counter per channel that every membership change raises, shared by all nodes. */
export interface MembershipVersions {
  get(channelId: string): Promise<number>;
  bump(channelId: string): Promise<void>;
}

/**
 * At most one push notification per user and channel per interval, shared by every node
 * (docs/chat-node.md, "Push notifications").
 */
export interface PushThrottle {
  /** True for the first call with `key` within `ttlMs` on any node (it then holds the key), else false. */
  acquire(key: string, ttlMs: number): Promise<boolean>;
}

// ---- sessions ----------------------------------------------------------------------------------

/**
 * Ended sessions, shared by every node and consulted on every authentication (HTTP request,
 * Socket.IO handshake and recovery): a revocation takes effect everywhere at once.
 */
export interface SessionRevocations {
  /** Ends one token (logout); kept until `untilMs`, when the token expires anyway. */
  revokeToken(tokenId: string, untilMs: number): Promise<void>;
  /** Ends every session of `userId` issued before `atMs`; kept until `untilMs` (the longest token life). */
  revokeUser(userId: string, atMs: number, untilMs: number): Promise<void>;
  isRevoked(s: { userId: string; tokenId: string; issuedAtMs: number }): Promise<boolean>;
}

// ---- partition assignment ---------------------------------------------------------------------

/**
 * Where partition ownership comes from. `start` calls `onChange` with the full set this node owns
 * now, and again whenever it changes; the returned promise resolves once the node has acted on it
 * (consumers of removed partitions stopped, their in-flight batches acked: "released"), so the
 * source can record the release for the operator.
 */
export interface AssignmentSource {
  start(onChange: (owned: Set<number>) => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}
