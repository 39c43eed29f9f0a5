import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ProtocolError, type Role } from "@vibetalk/protocol";
import mongoose, { type Connection } from "mongoose";
import { memberKey, messageId, pushDeviceId } from "../domain/ids.js";
import { eventFieldsOf, type EventFields, type StoredMessage } from "../domain/messages.js";
import { chunk, type ReceiptMarks } from "../domain/receipts.js";
import type { InsertOutcome } from "../domain/sequencing.js";
import { classifyFailure } from "../domain/failures.js";
import {
  DependencyUnavailableError,
  type ChannelHead,
  type ChannelRecord,
  type ChannelSettings,
  type FileRecord,
  type MemberRecord,
  type PushDeviceRecord,
  type PushTarget,
  type Store,
  type UserRecord,
} from "../ports.js";

/**
 * The store: MongoDB through mongoose, written for FerretDB v1 as much as for MongoDB
 * (docs/architecture.md#storage). Messages are insert-only; updates are coalesced by the callers and sent in
 * batches of at most UPDATE_BATCH statements (FerretDB 1.24 hangs on 100).
 */
export const UPDATE_BATCH = 40;
/** Documents per ordered insert command (FerretDB breaks ordered semantics across 100). */
export const ORDERED_INSERT_CHUNK = 50;
/**
 * Messages carry `blk = floor(seq / SEQ_BLOCK)`. FerretDB v1 pushes only equality filters down to
 * PostgreSQL (a range or `$in` on `_id` reads the whole collection into FerretDB: 0.7 s at 20k
 * messages), so a page is read as one or two `{channelId, blk}` equality queries (~27 ms at 50k).
 * On MongoDB the `{channelId: 1, blk: 1}` index serves the same queries.
 */
export const SEQ_BLOCK = 100;

/** A record as stored: the same fields, its id in `_id`. */
type Stored<R extends { id: string }> = Omit<R, "id"> & { _id: string };
type UserDoc = Stored<UserRecord>;
/** A channel as stored; `backfilledTo` is the official group's backfill resume point. */
type ChannelDoc = Stored<ChannelRecord> & { backfilledTo?: string; large?: boolean };
type MemberDoc = MemberRecord & { _id: string };
interface MessageDoc extends EventFields {
  _id: string;
  channelId: string;
  seq: number;
  blk: number;
  /** An edit, delete or reaction: the block of its `targetSeq`, so a page finds its events by equality. */
  tblk?: number;
  senderId: string;
  clientMsgId: string;
  body: string;
  fileIds: string[];
  createdAt: Date;
}
interface MentionDoc {
  /** `<channelId>:<seq>:<userId>` */
  _id: string;
  channelId: string;
  seq: number;
  userId: string;
}
interface BlockDoc {
  /** `<blocker>:<blocked>` */
  _id: string;
  blocker: string;
  blocked: string;
  createdAt: Date;
}
/** A push device: the fields of its kind (PushTarget) set, the others absent. */
interface PushDeviceDoc {
  _id: string;
  userId: string;
  kind: PushTarget["kind"];
  pushKey?: string;
  appId?: string;
  endpoint?: string;
  p256dh?: string;
  auth?: string;
  createdAt: Date;
}
interface FileMeta {
  channelId: string;
  uploaderId: string;
  contentType: string;
}

const { Schema } = mongoose;

const userSchema = new Schema<UserDoc>(
  {
    _id: String,
    username: { type: String, required: true, unique: true },
    displayName: String,
    passwordHash: String,
    createdAt: Date,
    lastSeenAt: { type: Date, default: null },
  },
  { versionKey: false, autoIndex: false },
);
const channelSchema = new Schema<ChannelDoc>(
  {
    _id: String,
    type: String,
    name: { type: String, default: null },
    createdBy: String,
    createdAt: Date,
    lastSeq: Number,
    lastMessage: { type: Schema.Types.Mixed, default: null },
    lastMessageAt: Date,
    memberCount: Number,
    posting: { type: String, default: undefined },
    pinnedSeq: { type: Number, default: undefined },
    backfilledTo: { type: String, default: undefined },
    // `large: true` beside the date: FerretDB v1 pushes equality filters down to PostgreSQL, not $exists.
    large: { type: Boolean, default: undefined },
    largeSince: { type: Date, default: undefined },
  },
  { versionKey: false, autoIndex: false },
);
channelSchema.index({ lastMessageAt: -1, _id: -1 });
const memberSchema = new Schema<MemberDoc>(
  {
    _id: String,
    channelId: String,
    userId: String,
    role: String,
    joinedAt: Date,
    lastDeliveredSeq: Number,
    lastReadSeq: Number,
    muted: Boolean,
  },
  { versionKey: false, autoIndex: false },
);
memberSchema.index({ userId: 1 });
memberSchema.index({ channelId: 1 });
const messageSchema = new Schema<MessageDoc>(
  {
    _id: String,
    channelId: String,
    seq: Number,
    blk: Number,
    senderId: String,
    clientMsgId: String,
    body: String,
    fileIds: [String],
    createdAt: Date,
    tblk: Number,
    kind: String,
    targetSeq: Number,
    replyTo: Number,
    emoji: String,
    on: Boolean,
    mentions: [String],
  },
  { versionKey: false, autoIndex: false },
);
messageSchema.index({ channelId: 1, senderId: 1, clientMsgId: 1 }, { unique: true, name: "idempotency" });
messageSchema.index({ channelId: 1, blk: 1 }, { name: "page" });
messageSchema.index({ channelId: 1, tblk: 1 }, { name: "targets" });

const mentionSchema = new Schema<MentionDoc>(
  { _id: String, channelId: String, seq: Number, userId: String },
  { versionKey: false, autoIndex: false },
);
mentionSchema.index({ userId: 1 });
const blockSchema = new Schema<BlockDoc>(
  { _id: String, blocker: String, blocked: String, createdAt: Date },
  { versionKey: false, autoIndex: false },
);
blockSchema.index({ blocker: 1 });
blockSchema.index({ blocked: 1 });
const pushDeviceSchema = new Schema<PushDeviceDoc>(
  {
    _id: String,
    userId: String,
    kind: String,
    pushKey: String,
    appId: String,
    endpoint: String,
    p256dh: String,
    auth: String,
    createdAt: Date,
  },
  { versionKey: false, autoIndex: false },
);
pushDeviceSchema.index({ userId: 1 });

/**
 * The store's server is down or cannot answer now: known down (the breaker is open, requests fail
 * at once instead of waiting for it), or a call failed for a reason about the server, not the
 * request (the driver's error, classified transient, is the cause).
 */
export class StoreUnavailableError extends DependencyUnavailableError {
  constructor(cause?: unknown) {
    super("store", "the store is unavailable", { cause });
    this.name = "StoreUnavailableError";
  }
}

/** A failed store call's error as the port states it: a server-side outage is StoreUnavailableError. */
function asPortError(err: unknown): unknown {
  return !(err instanceof DependencyUnavailableError) && classifyFailure(err) === "transient"
    ? new StoreUnavailableError(err)
    : err;
}

/** Methods that work without the server, or report on it. */
const UNGUARDED = new Set<PropertyKey>(["ping", "close", "isAvailable", "constructor"]);

export function isDuplicateKey(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === 11000;
}

const toUser = (d: UserDoc): UserRecord => ({
  id: d._id,
  username: d.username,
  displayName: d.displayName,
  passwordHash: d.passwordHash,
  createdAt: d.createdAt,
  lastSeenAt: d.lastSeenAt ?? null,
});
const toChannel = (d: ChannelDoc): ChannelRecord => ({
  id: d._id,
  type: d.type,
  name: d.name ?? null,
  createdBy: d.createdBy,
  createdAt: d.createdAt,
  lastSeq: d.lastSeq ?? 0,
  lastMessage: d.lastMessage ?? null,
  lastMessageAt: d.lastMessageAt,
  memberCount: d.memberCount ?? 0,
  ...(d.posting ? { posting: d.posting } : {}),
  ...(d.pinnedSeq !== undefined ? { pinnedSeq: d.pinnedSeq } : {}),
  ...(d.largeSince ? { largeSince: d.largeSince } : {}),
});
const fromChannel = (c: ChannelRecord): ChannelDoc => ({
  _id: c.id,
  type: c.type,
  name: c.name,
  createdBy: c.createdBy,
  createdAt: c.createdAt,
  lastSeq: c.lastSeq,
  lastMessage: c.lastMessage,
  lastMessageAt: c.lastMessageAt,
  memberCount: c.memberCount,
  ...(c.posting ? { posting: c.posting } : {}),
  ...(c.pinnedSeq !== undefined ? { pinnedSeq: c.pinnedSeq } : {}),
  ...(c.largeSince ? { large: true, largeSince: c.largeSince } : {}),
});
const toMember = (d: MemberDoc): MemberRecord => ({
  channelId: d.channelId,
  userId: d.userId,
  role: d.role,
  joinedAt: d.joinedAt,
  lastDeliveredSeq: d.lastDeliveredSeq ?? 0,
  lastReadSeq: d.lastReadSeq ?? 0,
  ...(d.muted ? { muted: true } : {}),
});
const fromMember = (m: MemberRecord): MemberDoc => ({ _id: memberKey(m.channelId, m.userId), ...m });
const toMessage = (d: MessageDoc): StoredMessage => ({
  id: d._id,
  channelId: d.channelId,
  seq: d.seq,
  senderId: d.senderId,
  clientMsgId: d.clientMsgId,
  body: d.body,
  fileIds: d.fileIds ?? [],
  createdAt: d.createdAt,
  ...eventFieldsOf(nullsAbsent(d)),
});
/** Fields a driver read back as null are absent. */
function nullsAbsent(d: MessageDoc): EventFields {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) if (v !== null) out[k] = v;
  return out as EventFields;
}
const fromMessage = (m: StoredMessage): MessageDoc => ({
  _id: m.id,
  channelId: m.channelId,
  seq: m.seq,
  blk: Math.floor(m.seq / SEQ_BLOCK),
  senderId: m.senderId,
  clientMsgId: m.clientMsgId,
  body: m.body,
  fileIds: m.fileIds,
  createdAt: m.createdAt,
  ...(m.targetSeq !== undefined ? { tblk: Math.floor(m.targetSeq / SEQ_BLOCK) } : {}),
  ...eventFieldsOf(m),
});

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
}

function toObjectId(id: string): mongoose.Types.ObjectId | null {
  return /^[a-f0-9]{24}$/.test(id) ? new mongoose.Types.ObjectId(id) : null;
}

export class MongoStore implements Store {
  private readonly users;
  private readonly channels;
  private readonly members;
  private readonly messages;
  private readonly mentions;
  private readonly blocks;
  private readonly pushDevices;
  private readonly bucket: mongoose.mongo.GridFSBucket;
  private readonly filesCol;
  /**
   * The driver's view of the server (its monitor checks every second): false from the first failed
   * heartbeat until one succeeds. While false every store call fails with StoreUnavailableError at
   * once — a circuit breaker — rather than each waiting the server selection timeout.
   */
  private available = true;

  private constructor(private readonly conn: Connection) {
    // Mongoose models carry the schemas and indexes; queries use the typed driver collections.
    conn.model<UserDoc>("User", userSchema, "users");
    conn.model<ChannelDoc>("Channel", channelSchema, "channels");
    conn.model<MemberDoc>("Member", memberSchema, "members");
    conn.model<MessageDoc>("Message", messageSchema, "messages");
    conn.model<MentionDoc>("Mention", mentionSchema, "mentions");
    conn.model<BlockDoc>("Block", blockSchema, "blocks");
    conn.model<PushDeviceDoc>("PushDevice", pushDeviceSchema, "push_devices");
    const db = conn.db;
    if (!db) throw new Error("mongo connection has no database");
    this.users = db.collection<UserDoc>("users");
    this.channels = db.collection<ChannelDoc>("channels");
    this.members = db.collection<MemberDoc>("members");
    this.messages = db.collection<MessageDoc>("messages");
    this.mentions = db.collection<MentionDoc>("mentions");
    this.blocks = db.collection<BlockDoc>("blocks");
    this.pushDevices = db.collection<PushDeviceDoc>("push_devices");
    this.bucket = new mongoose.mongo.GridFSBucket(db, { bucketName: "files" });
    this.filesCol = db.collection<{
      _id: mongoose.Types.ObjectId;
      length: number;
      filename: string;
      uploadDate: Date;
      metadata?: FileMeta;
    }>("files.files");
    conn
      .getClient()
      .on(
        "topologyDescriptionChanged",
        (e: { newDescription: { hasDataBearingServers: boolean } }) =>
          (this.available = e.newDescription.hasDataBearingServers),
      );
  }

  /** False while the driver knows no server it could send to (the breaker is open). */
  isAvailable(): boolean {
    return this.available;
  }

  /** The store with every call behind the breaker. */
  private guarded(): MongoStore {
    return new Proxy(this, {
      get: (target, prop, receiver) => {
        const v: unknown = Reflect.get(target, prop, receiver);
        if (typeof v !== "function" || UNGUARDED.has(prop)) return v;
        return (...args: unknown[]) => {
          if (!target.available) throw new StoreUnavailableError();
          try {
            const r = (v as (...a: unknown[]) => unknown).apply(target, args);
            return r instanceof Promise ? r.catch((err: unknown) => Promise.reject(asPortError(err))) : r;
          } catch (err) {
            throw asPortError(err);
          }
        };
      },
    });
  }

  /**
   * Connects and makes sure the indexes exist. `timeoutMs` bounds server selection and connecting
   * (a request while the store is down fails after at most that, and at once once the monitor,
   * checking every second, has seen it down).
   */
  static async connect(url: string, timeoutMs = 2000): Promise<MongoStore> {
    const conn = await mongoose
      .createConnection(url, {
        serverSelectionTimeoutMS: timeoutMs,
        connectTimeoutMS: timeoutMs,
        heartbeatFrequencyMS: 1000,
        maxPoolSize: 20,
        autoIndex: false,
      })
      .asPromise();
    const store = new MongoStore(conn);
    await Promise.all(Object.values(conn.models).map((m) => m.createIndexes()));
    return store.guarded();
  }

  // ---- users ----

  async createUser(u: { username: string; displayName: string; passwordHash: string }): Promise<UserRecord> {
    const doc: UserDoc = {
      _id: new mongoose.Types.ObjectId().toHexString(),
      username: u.username,
      displayName: u.displayName,
      passwordHash: u.passwordHash,
      createdAt: new Date(),
      lastSeenAt: null,
    };
    try {
      await this.users.insertOne(doc);
    } catch (err) {
      if (isDuplicateKey(err)) throw new ProtocolError("CONFLICT", "username is taken");
      throw err;
    }
    return toUser(doc);
  }

  async findUserByUsername(username: string): Promise<UserRecord | null> {
    const d = await this.users.findOne({ username });
    return d ? toUser(d) : null;
  }

  async getUser(id: string): Promise<UserRecord | null> {
    const d = await this.users.findOne({ _id: id });
    return d ? toUser(d) : null;
  }

  async getUsers(ids: readonly string[]): Promise<UserRecord[]> {
    if (ids.length === 0) return [];
    const docs = await this.users.find({ _id: { $in: [...new Set(ids)] } }).toArray();
    return docs.map(toUser);
  }

  async searchUsers(prefix: string, after: string | null, limit: number): Promise<UserRecord[]> {
    const filter: Record<string, unknown> = {};
    const conds: Record<string, unknown>[] = [];
    if (prefix) conds.push({ username: { $regex: `^${escapeRegex(prefix.toLowerCase())}` } });
    if (after) conds.push({ username: { $gt: after } });
    if (conds.length > 0) filter["$and"] = conds;
    const docs = await this.users.find(filter).sort({ username: 1 }).limit(limit).toArray();
    return docs.map(toUser);
  }

  async setLastSeen(userId: string, at: Date): Promise<void> {
    await this.users.updateOne({ _id: userId }, { $max: { lastSeenAt: at } });
  }

  newId(): string {
    return new mongoose.Types.ObjectId().toHexString();
  }

  async setPasswordHash(userId: string, passwordHash: string): Promise<void> {
    await this.users.updateOne({ _id: userId }, { $set: { passwordHash } });
  }

  async userIdsAfter(after: string | null, limit: number): Promise<string[]> {
    const docs = await this.users
      .find(after === null ? {} : { _id: { $gt: after } }, { projection: { _id: 1 } })
      .sort({ _id: 1 })
      .limit(limit)
      .toArray();
    return docs.map((d) => d._id);
  }

  // ---- channels ----

  async createChannel(
    channel: ChannelRecord,
    members: readonly MemberRecord[],
  ): Promise<{ channel: ChannelRecord; created: boolean }> {
    let created = true;
    try {
      await this.channels.insertOne(fromChannel(channel));
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      created = false;
    }
    // Members after the channel: a crash in between is repaired by creating the channel again
    // (direct channels) — member inserts are idempotent.
    await this.insertMembers(members);
    if (!created) {
      const existing = await this.getChannel(channel.id);
      if (!existing) throw new Error(`channel ${channel.id} vanished`);
      return { channel: existing, created };
    }
    return { channel, created };
  }

  async getChannel(id: string): Promise<ChannelRecord | null> {
    const d = await this.channels.findOne({ _id: id });
    return d ? toChannel(d) : null;
  }

  async getChannels(ids: readonly string[]): Promise<ChannelRecord[]> {
    if (ids.length === 0) return [];
    const docs = await this.channels.find({ _id: { $in: [...new Set(ids)] } }).toArray();
    return docs.map(toChannel);
  }

  async renameChannel(id: string, name: string): Promise<void> {
    await this.channels.updateOne({ _id: id }, { $set: { name } });
  }

  async updateChannelSettings(id: string, settings: ChannelSettings): Promise<void> {
    const set: Partial<ChannelSettings> = {};
    if (settings.posting !== undefined) set.posting = settings.posting;
    if (settings.pinnedSeq !== undefined) set.pinnedSeq = settings.pinnedSeq;
    if (Object.keys(set).length > 0) await this.channels.updateOne({ _id: id }, { $set: set });
  }

  async backfillMark(id: string): Promise<string | null> {
    const d = await this.channels.findOne({ _id: id }, { projection: { backfilledTo: 1 } });
    return d?.backfilledTo ?? null;
  }

  async raiseBackfillMark(id: string, userId: string): Promise<void> {
    // $max compares strings too, so two nodes backfilling at once never move the mark back.
    await this.channels.updateOne({ _id: id }, { $max: { backfilledTo: userId } });
  }

  async raiseChannelHeads(heads: readonly ChannelHead[]): Promise<void> {
    for (const part of chunk(heads, UPDATE_BATCH)) {
      await this.channels.bulkWrite(
        part.map((h) => ({
          updateOne: {
            filter: { _id: h.channelId, lastSeq: { $lt: h.lastSeq } },
            update: {
              $set: h.lastMessage
                ? { lastSeq: h.lastSeq, lastMessage: h.lastMessage, lastMessageAt: h.lastMessage.createdAt }
                : { lastSeq: h.lastSeq },
            },
          },
        })),
        { ordered: false },
      );
    }
  }

  async markLarge(id: string, at: Date): Promise<void> {
    // Conditional on `large` not being set: the first mark stays.
    await this.channels.updateOne(
      { _id: id, large: { $ne: true } },
      { $set: { large: true, largeSince: at } },
    );
  }

  async largeChannelIds(): Promise<string[]> {
    const docs = await this.channels.find({ large: true }, { projection: { _id: 1 } }).toArray();
    return docs.map((d) => d._id);
  }

  // ---- members ----

  async listMembers(channelId: string): Promise<MemberRecord[]> {
    const docs = await this.members.find({ channelId }).toArray();
    return docs.map(toMember);
  }

  async listMemberships(userId: string): Promise<MemberRecord[]> {
    const docs = await this.members.find({ userId }).toArray();
    return docs.map(toMember);
  }

  async getMember(channelId: string, userId: string): Promise<MemberRecord | null> {
    const d = await this.members.findOne({ _id: memberKey(channelId, userId) });
    return d ? toMember(d) : null;
  }

  async membershipsAmong(userId: string, channelIds: readonly string[]): Promise<MemberRecord[]> {
    // One equality read each: FerretDB v1 would read the whole collection for an `_id: {$in}`.
    const docs = await Promise.all(
      [...new Set(channelIds)].map((c) => this.members.findOne({ _id: memberKey(c, userId) })),
    );
    return docs.filter((d): d is NonNullable<typeof d> => d !== null).map(toMember);
  }

  async listMembersWithRoles(channelId: string, roles: readonly Role[]): Promise<MemberRecord[]> {
    // One equality query per role (pushed down on FerretDB v1; a `$in` on role would not be).
    const docs = await Promise.all(
      [...new Set(roles)].map((role) => this.members.find({ channelId, role }).toArray()),
    );
    return docs.flat().map(toMember);
  }

  async addMembers(channelId: string, members: readonly MemberRecord[]): Promise<void> {
    const [only] = members;
    if (members.length === 1 && only) {
      // One member (a registration joining the official group, a login's safety net): whether it was
      // inserted is known, so the count moves by it. Recounting would read every member of the channel
      // on each registration: 100,000 reads per account at 100,000 accounts.
      try {
        await this.members.insertOne(fromMember(only));
      } catch (err) {
        if (isDuplicateKey(err)) return;
        throw err;
      }
      await this.channels.updateOne({ _id: channelId }, { $inc: { memberCount: 1 } });
      return;
    }
    await this.insertMembers(members);
    await this.refreshMemberCount(channelId);
  }

  async removeMember(channelId: string, userId: string): Promise<boolean> {
    const r = await this.members.deleteOne({ _id: memberKey(channelId, userId) });
    if (r.deletedCount > 0) await this.channels.updateOne({ _id: channelId }, { $inc: { memberCount: -1 } });
    return r.deletedCount > 0;
  }

  async setRole(channelId: string, userId: string, role: Role): Promise<void> {
    await this.members.updateOne({ _id: memberKey(channelId, userId) }, { $set: { role } });
  }

  async setMuted(channelId: string, userId: string, muted: boolean): Promise<void> {
    await this.members.updateOne({ _id: memberKey(channelId, userId) }, { $set: { muted } });
  }

  async countReceipts(
    channelId: string,
    seq: number,
    except: string,
  ): Promise<{ delivered: number; read: number }> {
    const others = { channelId, userId: { $ne: except } };
    const [delivered, read] = await Promise.all([
      this.members.countDocuments({
        ...others,
        $or: [{ lastDeliveredSeq: { $gte: seq } }, { lastReadSeq: { $gte: seq } }],
      }),
      this.members.countDocuments({ ...others, lastReadSeq: { $gte: seq } }),
    ]);
    return { delivered, read };
  }

  async raiseReceipts(marks: readonly ReceiptMarks[]): Promise<void> {
    for (const part of chunk(marks, UPDATE_BATCH)) {
      await this.members.bulkWrite(
        part.map((m) => ({
          updateOne: {
            filter: { _id: memberKey(m.channelId, m.userId) },
            update: { $max: { lastDeliveredSeq: m.lastDeliveredSeq, lastReadSeq: m.lastReadSeq } },
          },
        })),
        { ordered: false },
      );
    }
  }

  private async insertMembers(members: readonly MemberRecord[]): Promise<void> {
    // Inserts are cheap on FerretDB; duplicates (already members) are expected and ignored.
    await this.insertIgnoringDuplicates(this.members, members.map(fromMember));
  }

  /** Unordered inserts in parts of 500; documents whose `_id` exists already are left as they are. */
  private async insertIgnoringDuplicates<D extends { _id: string }>(
    col: mongoose.mongo.Collection<D>,
    docs: readonly D[],
  ): Promise<void> {
    for (const part of chunk(docs, 500)) {
      try {
        await col.insertMany(part as mongoose.mongo.OptionalUnlessRequiredId<D>[], { ordered: false });
      } catch (err) {
        const writeErrors = (err as { writeErrors?: Array<{ code?: number }> }).writeErrors;
        const onlyDuplicates =
          isDuplicateKey(err) && (writeErrors ?? []).every((w) => w.code === undefined || w.code === 11000);
        if (!onlyDuplicates) throw err;
      }
    }
  }

  private async refreshMemberCount(channelId: string): Promise<void> {
    const n = await this.members.countDocuments({ channelId });
    await this.channels.updateOne({ _id: channelId }, { $set: { memberCount: n } });
  }

  // ---- messages ----

  async lastSeq(channelId: string): Promise<number> {
    return (await this.lastMessage(channelId))?.seq ?? 0;
  }

  /**
   * The newest message. Blocks are filled in order (seq is gap-free), so the last non-empty block
   * holds it: start at the block of the channel's `lastSeq` copy (never ahead of the messages),
   * then gallop forward and bisect — one or two queries when the copy is fresh, O(log n) when not.
   */
  async lastMessage(channelId: string): Promise<StoredMessage | null> {
    const head = await this.channels.findOne({ _id: channelId }, { projection: { lastSeq: 1 } });
    const block = (blk: number) => this.messages.find({ channelId, blk }).toArray();
    const isFull = (docs: MessageDoc[], blk: number) => docs.some((d) => d.seq === (blk + 1) * SEQ_BLOCK - 1);
    let known = Math.floor((head?.lastSeq ?? 0) / SEQ_BLOCK);
    let docs = await block(known);
    if (docs.length === 0) return null;
    if (isFull(docs, known)) {
      // gallop: find a block past the end
      let step = 1;
      let empty = -1;
      while (empty < 0) {
        const probe = await block(known + step);
        if (probe.length === 0) empty = known + step;
        else {
          known += step;
          docs = probe;
          if (!isFull(probe, known)) empty = known + 1;
          step *= 2;
        }
      }
      // bisect between the last non-empty block seen and the first empty one
      while (empty - known > 1) {
        const mid = Math.floor((known + empty) / 2);
        const probe = await block(mid);
        if (probe.length === 0) empty = mid;
        else {
          known = mid;
          docs = probe;
        }
      }
    }
    const top = docs.reduce((x, y) => (y.seq > x.seq ? y : x));
    return toMessage(top);
  }

  /** Messages with `from <= seq <= to`, ascending, from the blocks that cover the range. */
  private async range(channelId: string, from: number, to: number): Promise<StoredMessage[]> {
    if (to < from) return [];
    const blocks: number[] = [];
    for (let b = Math.floor(from / SEQ_BLOCK); b <= Math.floor(to / SEQ_BLOCK); b++) blocks.push(b);
    const parts = await Promise.all(blocks.map((blk) => this.messages.find({ channelId, blk }).toArray()));
    return parts
      .flat()
      .filter((d) => d.seq >= from && d.seq <= to)
      .sort((x, y) => x.seq - y.seq)
      .map(toMessage);
  }

  async insertOrdered(docs: StoredMessage[]): Promise<InsertOutcome> {
    // FerretDB 1.24 splits an insert into chunks of 100 documents and goes on with the next chunks
    // after an error, even when ordered: slices below that keep "stop at the first failure" true.
    let inserted = 0;
    for (const part of chunk(docs, ORDERED_INSERT_CHUNK)) {
      const r = await this.insertChunk(part);
      inserted += r.inserted;
      if (r.failure) return { inserted, failure: { ...r.failure, index: inserted } };
    }
    return { inserted };
  }

  private async insertChunk(docs: StoredMessage[]): Promise<InsertOutcome> {
    if (docs.length === 0) return { inserted: 0 };
    try {
      await this.messages.insertMany(docs.map(fromMessage), { ordered: true });
      return { inserted: docs.length };
    } catch (err) {
      const e = err as {
        insertedCount?: number;
        writeErrors?: Array<{ index?: number; code?: number }> | { index?: number; code?: number };
      };
      const writeErrors = Array.isArray(e.writeErrors) ? e.writeErrors : e.writeErrors ? [e.writeErrors] : [];
      const first = writeErrors[0];
      if (first && typeof first.index === "number") {
        return {
          inserted: first.index,
          failure: { index: first.index, duplicateKey: first.code === 11000, error: err },
        };
      }
      // No per-document report (connection lost, …): nothing is known to be written.
      return { inserted: 0, failure: { index: 0, duplicateKey: false, error: err } };
    }
  }

  async findByClientMsgId(
    channelId: string,
    senderId: string,
    clientMsgId: string,
  ): Promise<StoredMessage | null> {
    const d = await this.messages.findOne({ channelId, senderId, clientMsgId });
    return d ? toMessage(d) : null;
  }

  async messagesAfter(
    channelId: string,
    afterSeq: number,
    limit: number,
    beforeSeq?: number,
  ): Promise<StoredMessage[]> {
    const to = Math.min(afterSeq + limit, (beforeSeq ?? Infinity) - 1);
    return this.range(channelId, afterSeq + 1, to);
  }

  async messagesBefore(channelId: string, beforeSeq: number | null, limit: number): Promise<StoredMessage[]> {
    const top = beforeSeq === null ? await this.lastSeq(channelId) : beforeSeq - 1;
    return this.range(channelId, Math.max(1, top - limit + 1), top);
  }

  async messageAt(channelId: string, seq: number): Promise<StoredMessage | null> {
    const d = await this.messages.findOne({ _id: messageId(channelId, seq) });
    return d ? toMessage(d) : null;
  }

  /** One `{channelId, tblk}` equality query per block of targets (one or two for a page). */
  async eventsTargeting(channelId: string, seqs: readonly number[]): Promise<StoredMessage[]> {
    const wanted = new Set(seqs);
    const blocks = [...new Set(seqs.map((q) => Math.floor(q / SEQ_BLOCK)))];
    const parts = await Promise.all(blocks.map((tblk) => this.messages.find({ channelId, tblk }).toArray()));
    return parts
      .flat()
      .filter((d) => d.targetSeq !== undefined && wanted.has(d.targetSeq))
      .sort((x, y) => x.seq - y.seq)
      .map(toMessage);
  }

  async scrubDeleted(channelId: string, targetSeq: number): Promise<void> {
    const original = await this.messages.findOne({ _id: messageId(channelId, targetSeq) });
    await this.messages.updateOne(
      { _id: messageId(channelId, targetSeq) },
      { $set: { body: "", fileIds: [] }, $unset: { mentions: "" } },
    );
    await this.messages.updateMany(
      { channelId, tblk: Math.floor(targetSeq / SEQ_BLOCK), targetSeq, kind: "edit" },
      { $set: { body: "" }, $unset: { mentions: "" } },
    );
    await this.channels.updateOne(
      { _id: channelId, "lastMessage.seq": targetSeq },
      { $set: { "lastMessage.body": "", "lastMessage.hasFiles": false, "lastMessage.deleted": true } },
    );
    await this.mentions.deleteMany({ channelId, seq: targetSeq });
    for (const f of original?.fileIds ?? []) await this.deleteFile(f);
  }

  async reviseHead(channelId: string, targetSeq: number, editSeq: number, preview: string): Promise<void> {
    await this.channels.updateOne(
      {
        _id: channelId,
        "lastMessage.seq": targetSeq,
        "lastMessage.deleted": { $ne: true },
        $or: [{ "lastMessage.editSeq": { $exists: false } }, { "lastMessage.editSeq": { $lt: editSeq } }],
      },
      { $set: { "lastMessage.body": preview, "lastMessage.edited": true, "lastMessage.editSeq": editSeq } },
    );
  }

  // ---- mentions and blocks ----

  async addMentions(channelId: string, seq: number, userIds: readonly string[]): Promise<void> {
    if (userIds.length === 0) return;
    const docs = [...new Set(userIds)].map((userId) => ({
      _id: `${channelId}:${seq}:${userId}`,
      channelId,
      seq,
      userId,
    }));
    await this.insertIgnoringDuplicates(this.mentions, docs);
  }

  async mentionsOf(userId: string): Promise<Array<{ channelId: string; seq: number }>> {
    const docs = await this.mentions.find({ userId }).toArray();
    return docs.map((d) => ({ channelId: d.channelId, seq: d.seq }));
  }

  async setBlocked(blocker: string, blocked: string, on: boolean): Promise<void> {
    const _id = `${blocker}:${blocked}`;
    if (!on) await this.blocks.deleteOne({ _id });
    else await this.insertIgnoringDuplicates(this.blocks, [{ _id, blocker, blocked, createdAt: new Date() }]);
  }

  async blocksOf(blocker: string): Promise<Array<{ userId: string; createdAt: Date }>> {
    const docs = await this.blocks.find({ blocker }).toArray();
    return docs
      .sort((x, y) => x.createdAt.getTime() - y.createdAt.getTime())
      .map((d) => ({ userId: d.blocked, createdAt: d.createdAt }));
  }

  async blockersOf(blocked: string): Promise<string[]> {
    return (await this.blocks.find({ blocked }).toArray()).map((d) => d.blocker);
  }

  async isBlockedBetween(a: string, b: string): Promise<boolean> {
    const [x, y] = await Promise.all([
      this.blocks.findOne({ _id: `${a}:${b}` }),
      this.blocks.findOne({ _id: `${b}:${a}` }),
    ]);
    return x !== null || y !== null;
  }

  // ---- push devices ----

  async addPushDevice(
    userId: string,
    target: PushTarget,
    max: number,
  ): Promise<{ device: PushDeviceRecord; created: boolean } | null> {
    const _id = pushDeviceId(userId, target);
    const existing = await this.pushDevices.findOne({ _id });
    if (existing) return { device: toPushDevice(existing), created: false };
    // Count, then insert: two registrations racing may pass the bound by one; the bound is a guard
    // against unbounded growth, not an exact quota (docs/decisions.md 58).
    if ((await this.pushDevices.countDocuments({ userId })) >= max) return null;
    const doc = { _id, userId, ...target, createdAt: new Date() } as PushDeviceDoc;
    await this.insertIgnoringDuplicates(this.pushDevices, [doc]);
    const stored = await this.pushDevices.findOne({ _id });
    return { device: toPushDevice(stored ?? doc), created: true };
  }

  async pushDevicesOf(userIds: readonly string[]): Promise<PushDeviceRecord[]> {
    if (userIds.length === 0) return [];
    // One equality query per user: FerretDB v1 reads the whole collection for an `$in`.
    const parts = await Promise.all(
      [...new Set(userIds)].map((userId) => this.pushDevices.find({ userId }).toArray()),
    );
    return parts
      .flat()
      .map(toPushDevice)
      .sort((x, y) => x.createdAt.getTime() - y.createdAt.getTime());
  }

  async removePushDevice(userId: string, id: string): Promise<boolean> {
    return (await this.pushDevices.deleteOne({ _id: id, userId })).deletedCount > 0;
  }

  // ---- files ----

  async saveFile(
    meta: Omit<FileRecord, "id" | "size" | "createdAt">,
    content: Readable,
  ): Promise<FileRecord> {
    const metadata: FileMeta = {
      channelId: meta.channelId,
      uploaderId: meta.uploaderId,
      contentType: meta.contentType,
    };
    const upload = this.bucket.openUploadStream(meta.name, { metadata });
    await pipeline(content, upload);
    const id = upload.id.toHexString();
    const rec = await this.getFile(id);
    if (!rec) throw new Error(`file ${id} not found after upload`);
    return rec;
  }

  async getFile(id: string): Promise<FileRecord | null> {
    const oid = toObjectId(id);
    if (!oid) return null;
    const d = await this.filesCol.findOne({ _id: oid });
    if (!d || !d.metadata) return null;
    return {
      id,
      channelId: d.metadata.channelId,
      uploaderId: d.metadata.uploaderId,
      name: d.filename,
      size: d.length,
      contentType: d.metadata.contentType,
      createdAt: d.uploadDate,
    };
  }

  async getFiles(ids: readonly string[]): Promise<FileRecord[]> {
    const out = await Promise.all([...new Set(ids)].map((id) => this.getFile(id)));
    return out.filter((f): f is FileRecord => f !== null);
  }

  openFile(id: string): Readable {
    const oid = toObjectId(id);
    if (!oid) throw new ProtocolError("NOT_FOUND", "no such file");
    return this.bucket.openDownloadStream(oid);
  }

  async deleteFile(id: string): Promise<void> {
    const oid = toObjectId(id);
    if (oid) await this.bucket.delete(oid).catch(() => undefined);
  }

  // ---- lifecycle ----

  async ping(): Promise<boolean> {
    try {
      if (!this.available || this.conn.readyState !== 1 || !this.conn.db) return false;
      await this.conn.db.command({ ping: 1 });
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.conn.close();
  }
}

function toPushDevice(d: PushDeviceDoc): PushDeviceRecord {
  const base = { id: d._id, userId: d.userId, createdAt: d.createdAt };
  return d.kind === "gateway"
    ? { ...base, kind: "gateway", pushKey: d.pushKey ?? "", appId: d.appId ?? "" }
    : { ...base, kind: "webpush", endpoint: d.endpoint ?? "", p256dh: d.p256dh ?? "", auth: d.auth ?? "" };
}
