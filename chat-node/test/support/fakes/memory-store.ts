// The Store port in memory (docs/chat-node.md#ports-and-fakes): what MongoStore does on FerretDB, as
// storeContract (test/support/contracts/store.ts) states it, with no server.
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { ProtocolError, type Role } from "@vibetalk/protocol";
import { memberKey, messageId, pushDeviceId } from "../../../src/domain/ids.js";
import type { StoredMessage } from "../../../src/domain/messages.js";
import type { ReceiptMarks } from "../../../src/domain/receipts.js";
import type { InsertOutcome } from "../../../src/domain/sequencing.js";
import {
  DependencyUnavailableError,
  type ChannelHead,
  type ChannelRecord,
  type ChannelSettings,
  type FileRecord,
  type MemberRecord,
  type Store,
  type UserRecord,
  type PushDeviceRecord,
  type PushTarget,
} from "../../../src/ports.js";
import { MemorySequenceStore } from "../memory-sequence-store.js";

const copy = <T>(v: T): T => structuredClone(v);
const objectId = () => randomBytes(12).toString("hex");
const isObjectId = (id: string) => /^[a-f0-9]{24}$/.test(id);

/**
 * Messages (sequencing, idempotency keys, the knobs of MemorySequenceStore) plus users, channels,
 * members and files. Records go in and come out as copies, as through a server. `unavailable`
 * makes every call reject with DependencyUnavailableError, as MongoStore does while its server is
 * down.
 */
export class MemoryStore extends MemorySequenceStore implements Store {
  readonly users = new Map<string, UserRecord>();
  readonly channels = new Map<string, ChannelRecord>();
  readonly members = new Map<string, MemberRecord>();
  readonly files = new Map<string, { record: FileRecord; content: Buffer }>();
  /** `<channelId>:<seq>:<userId>` → the mention */
  readonly mentions = new Map<string, { channelId: string; seq: number; userId: string }>();
  /** `<blocker>:<blocked>` → since when */
  readonly blocks = new Map<string, Date>();
  /** Push devices by id. */
  readonly pushDevices = new Map<string, PushDeviceRecord>();
  /** While true every call rejects with DependencyUnavailableError (the store is down). */
  unavailable = false;
  /** Calls per method, for tests that check what reached the store. */
  readonly calls = new Map<string, number>();

  private check(method: string): void {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
    if (this.unavailable) throw new DependencyUnavailableError("store", "the store is unavailable");
  }

  newId(): string {
    return objectId();
  }

  // ---- users ----

  async createUser(u: { username: string; displayName: string; passwordHash: string }): Promise<UserRecord> {
    this.check("createUser");
    for (const x of this.users.values())
      if (x.username === u.username) throw new ProtocolError("CONFLICT", "username is taken");
    const rec: UserRecord = { id: objectId(), ...u, createdAt: new Date(), lastSeenAt: null };
    this.users.set(rec.id, rec);
    return copy(rec);
  }

  async findUserByUsername(username: string): Promise<UserRecord | null> {
    this.check("findUserByUsername");
    for (const u of this.users.values()) if (u.username === username) return copy(u);
    return null;
  }

  async getUser(id: string): Promise<UserRecord | null> {
    this.check("getUser");
    const u = this.users.get(id);
    return u ? copy(u) : null;
  }

  async getUsers(ids: readonly string[]): Promise<UserRecord[]> {
    this.check("getUsers");
    return [...new Set(ids)].flatMap((id) => {
      const u = this.users.get(id);
      return u ? [copy(u)] : [];
    });
  }

  async searchUsers(prefix: string, after: string | null, limit: number): Promise<UserRecord[]> {
    this.check("searchUsers");
    const p = prefix.toLowerCase();
    return [...this.users.values()]
      .filter((u) => u.username.startsWith(p) && (after === null || u.username > after))
      .sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0))
      .slice(0, limit)
      .map(copy);
  }

  async setLastSeen(userId: string, at: Date): Promise<void> {
    this.check("setLastSeen");
    const u = this.users.get(userId);
    if (u && (!u.lastSeenAt || u.lastSeenAt < at)) u.lastSeenAt = new Date(at);
  }

  async setPasswordHash(userId: string, passwordHash: string): Promise<void> {
    this.check("setPasswordHash");
    const u = this.users.get(userId);
    if (u) u.passwordHash = passwordHash;
  }

  async userIdsAfter(after: string | null, limit: number): Promise<string[]> {
    this.check("userIdsAfter");
    return [...this.users.keys()]
      .filter((id) => after === null || id > after)
      .sort()
      .slice(0, limit);
  }

  // ---- channels ----

  async createChannel(
    channel: ChannelRecord,
    members: readonly MemberRecord[],
  ): Promise<{ channel: ChannelRecord; created: boolean }> {
    this.check("createChannel");
    const existing = this.channels.get(channel.id);
    if (!existing) this.channels.set(channel.id, copy(channel));
    this.insertMembers(members);
    return { channel: copy(existing ?? channel), created: !existing };
  }

  async getChannel(id: string): Promise<ChannelRecord | null> {
    this.check("getChannel");
    const c = this.channels.get(id);
    return c ? copy(c) : null;
  }

  async getChannels(ids: readonly string[]): Promise<ChannelRecord[]> {
    this.check("getChannels");
    return [...new Set(ids)].flatMap((id) => {
      const c = this.channels.get(id);
      return c ? [copy(c)] : [];
    });
  }

  async renameChannel(id: string, name: string): Promise<void> {
    this.check("renameChannel");
    const c = this.channels.get(id);
    if (c) c.name = name;
  }

  async updateChannelSettings(id: string, settings: ChannelSettings): Promise<void> {
    this.check("updateChannelSettings");
    const c = this.channels.get(id);
    if (!c) return;
    if (settings.posting !== undefined) c.posting = settings.posting;
    if (settings.pinnedSeq !== undefined) c.pinnedSeq = settings.pinnedSeq;
  }

  /** channelId → backfill resume point. */
  readonly backfillMarks = new Map<string, string>();

  async backfillMark(id: string): Promise<string | null> {
    this.check("backfillMark");
    return this.backfillMarks.get(id) ?? null;
  }

  async raiseBackfillMark(id: string, userId: string): Promise<void> {
    this.check("raiseBackfillMark");
    const at = this.backfillMarks.get(id);
    if (this.channels.has(id) && (at === undefined || at < userId)) this.backfillMarks.set(id, userId);
  }

  async raiseChannelHeads(heads: readonly ChannelHead[]): Promise<void> {
    this.check("raiseChannelHeads");
    for (const h of heads) {
      const c = this.channels.get(h.channelId);
      if (!c || c.lastSeq >= h.lastSeq) continue;
      c.lastSeq = h.lastSeq;
      if (!h.lastMessage) continue;
      c.lastMessage = copy(h.lastMessage);
      c.lastMessageAt = new Date(h.lastMessage.createdAt);
    }
  }

  async markLarge(id: string, at: Date): Promise<void> {
    this.check("markLarge");
    const c = this.channels.get(id);
    if (c && !c.largeSince) c.largeSince = new Date(at);
  }

  async largeChannelIds(): Promise<string[]> {
    this.check("largeChannelIds");
    return [...this.channels.values()].filter((c) => c.largeSince).map((c) => c.id);
  }

  // ---- members ----

  async listMembers(channelId: string): Promise<MemberRecord[]> {
    this.check("listMembers");
    return [...this.members.values()].filter((m) => m.channelId === channelId).map(copy);
  }

  async listMemberships(userId: string): Promise<MemberRecord[]> {
    this.check("listMemberships");
    return [...this.members.values()].filter((m) => m.userId === userId).map(copy);
  }

  async getMember(channelId: string, userId: string): Promise<MemberRecord | null> {
    this.check("getMember");
    const m = this.members.get(memberKey(channelId, userId));
    return m ? copy(m) : null;
  }

  async membershipsAmong(userId: string, channelIds: readonly string[]): Promise<MemberRecord[]> {
    this.check("membershipsAmong");
    return [...new Set(channelIds)].flatMap((c) => {
      const m = this.members.get(memberKey(c, userId));
      return m ? [copy(m)] : [];
    });
  }

  async listMembersWithRoles(channelId: string, roles: readonly Role[]): Promise<MemberRecord[]> {
    this.check("listMembersWithRoles");
    return [...this.members.values()]
      .filter((m) => m.channelId === channelId && roles.includes(m.role))
      .map(copy);
  }

  async addMembers(channelId: string, members: readonly MemberRecord[]): Promise<void> {
    this.check("addMembers");
    this.insertMembers(members);
    this.refreshMemberCount(channelId);
  }

  async removeMember(channelId: string, userId: string): Promise<boolean> {
    this.check("removeMember");
    const removed = this.members.delete(memberKey(channelId, userId));
    this.refreshMemberCount(channelId);
    return removed;
  }

  async setRole(channelId: string, userId: string, role: Role): Promise<void> {
    this.check("setRole");
    const m = this.members.get(memberKey(channelId, userId));
    if (m) m.role = role;
  }

  async countReceipts(
    channelId: string,
    seq: number,
    except: string,
  ): Promise<{ delivered: number; read: number }> {
    this.check("countReceipts");
    const others = [...this.members.values()].filter((m) => m.channelId === channelId && m.userId !== except);
    return {
      delivered: others.filter((m) => Math.max(m.lastDeliveredSeq, m.lastReadSeq) >= seq).length,
      read: others.filter((m) => m.lastReadSeq >= seq).length,
    };
  }

  async raiseReceipts(marks: readonly ReceiptMarks[]): Promise<void> {
    this.check("raiseReceipts");
    for (const r of marks) {
      const m = this.members.get(memberKey(r.channelId, r.userId));
      if (!m) continue;
      m.lastDeliveredSeq = Math.max(m.lastDeliveredSeq, r.lastDeliveredSeq);
      m.lastReadSeq = Math.max(m.lastReadSeq, r.lastReadSeq);
    }
  }

  async setMuted(channelId: string, userId: string, muted: boolean): Promise<void> {
    this.check("setMuted");
    const m = this.members.get(memberKey(channelId, userId));
    if (m && muted) m.muted = true;
    else if (m) delete m.muted;
  }

  private insertMembers(members: readonly MemberRecord[]): void {
    for (const m of members) {
      const k = memberKey(m.channelId, m.userId);
      if (!this.members.has(k)) this.members.set(k, copy(m));
    }
  }

  private refreshMemberCount(channelId: string): void {
    const c = this.channels.get(channelId);
    if (c) c.memberCount = [...this.members.values()].filter((m) => m.channelId === channelId).length;
  }

  // ---- messages ----

  override async lastSeq(channelId: string): Promise<number> {
    this.check("lastSeq");
    return super.lastSeq(channelId);
  }

  override async insertOrdered(docs: StoredMessage[]): Promise<InsertOutcome> {
    this.check("insertOrdered");
    return super.insertOrdered(docs.map(copy));
  }

  override async findByClientMsgId(
    channelId: string,
    senderId: string,
    clientMsgId: string,
  ): Promise<StoredMessage | null> {
    this.check("findByClientMsgId");
    const m = await super.findByClientMsgId(channelId, senderId, clientMsgId);
    return m ? copy(m) : null;
  }

  async lastMessage(channelId: string): Promise<StoredMessage | null> {
    this.check("lastMessage");
    let top: StoredMessage | null = null;
    for (const m of this.byId.values()) if (m.channelId === channelId && (!top || m.seq > top.seq)) top = m;
    return top ? copy(top) : null;
  }

  /** Messages with `from <= seq <= to`, ascending. */
  private range(channelId: string, from: number, to: number): StoredMessage[] {
    return [...this.byId.values()]
      .filter((m) => m.channelId === channelId && m.seq >= from && m.seq <= to)
      .sort((a, b) => a.seq - b.seq)
      .map(copy);
  }

  async messagesAfter(
    channelId: string,
    afterSeq: number,
    limit: number,
    beforeSeq?: number,
  ): Promise<StoredMessage[]> {
    this.check("messagesAfter");
    return this.range(channelId, afterSeq + 1, Math.min(afterSeq + limit, (beforeSeq ?? Infinity) - 1));
  }

  async messagesBefore(channelId: string, beforeSeq: number | null, limit: number): Promise<StoredMessage[]> {
    this.check("messagesBefore");
    const top = beforeSeq === null ? await super.lastSeq(channelId) : beforeSeq - 1;
    return this.range(channelId, Math.max(1, top - limit + 1), top);
  }

  async messageAt(channelId: string, seq: number): Promise<StoredMessage | null> {
    this.check("messageAt");
    const m = this.byId.get(messageId(channelId, seq));
    return m ? copy(m) : null;
  }

  async eventsTargeting(channelId: string, seqs: readonly number[]): Promise<StoredMessage[]> {
    this.check("eventsTargeting");
    const wanted = new Set(seqs);
    return [...this.byId.values()]
      .filter((m) => m.channelId === channelId && m.targetSeq !== undefined && wanted.has(m.targetSeq))
      .sort((a, b) => a.seq - b.seq)
      .map(copy);
  }

  async scrubDeleted(channelId: string, targetSeq: number): Promise<void> {
    this.check("scrubDeleted");
    const original = this.byId.get(messageId(channelId, targetSeq));
    const files = original?.fileIds ?? [];
    for (const m of this.byId.values()) {
      if (m.channelId !== channelId) continue;
      if (m.seq === targetSeq) m.fileIds = [];
      if (m.seq === targetSeq || (m.kind === "edit" && m.targetSeq === targetSeq)) {
        m.body = "";
        delete m.mentions;
      }
    }
    const c = this.channels.get(channelId);
    if (c?.lastMessage?.seq === targetSeq)
      c.lastMessage = { ...c.lastMessage, body: "", hasFiles: false, deleted: true };
    for (const [k, m] of this.mentions)
      if (m.channelId === channelId && m.seq === targetSeq) this.mentions.delete(k);
    for (const f of files) this.files.delete(f);
  }

  async reviseHead(channelId: string, targetSeq: number, editSeq: number, preview: string): Promise<void> {
    this.check("reviseHead");
    const c = this.channels.get(channelId);
    const last = c?.lastMessage;
    if (c && last?.seq === targetSeq && !last.deleted && (last.editSeq ?? 0) < editSeq)
      c.lastMessage = { ...last, body: preview, edited: true, editSeq };
  }

  // ---- mentions and blocks ----

  async addMentions(channelId: string, seq: number, userIds: readonly string[]): Promise<void> {
    this.check("addMentions");
    for (const userId of userIds)
      this.mentions.set(`${channelId}:${seq}:${userId}`, { channelId, seq, userId });
  }

  async mentionsOf(userId: string): Promise<Array<{ channelId: string; seq: number }>> {
    this.check("mentionsOf");
    return [...this.mentions.values()]
      .filter((m) => m.userId === userId)
      .map((m) => ({ channelId: m.channelId, seq: m.seq }));
  }

  async setBlocked(blocker: string, blocked: string, on: boolean): Promise<void> {
    this.check("setBlocked");
    const k = `${blocker}:${blocked}`;
    if (!on) this.blocks.delete(k);
    else if (!this.blocks.has(k)) this.blocks.set(k, new Date());
  }

  async blocksOf(blocker: string): Promise<Array<{ userId: string; createdAt: Date }>> {
    this.check("blocksOf");
    return [...this.blocks]
      .filter(([k]) => k.startsWith(`${blocker}:`))
      .map(([k, at]) => ({ userId: k.slice(blocker.length + 1), createdAt: new Date(at) }))
      .sort((x, y) => x.createdAt.getTime() - y.createdAt.getTime());
  }

  async blockersOf(blocked: string): Promise<string[]> {
    this.check("blockersOf");
    return [...this.blocks.keys()]
      .filter((k) => k.endsWith(`:${blocked}`))
      .map((k) => k.split(":")[0] as string);
  }

  async isBlockedBetween(a: string, b: string): Promise<boolean> {
    this.check("isBlockedBetween");
    return this.blocks.has(`${a}:${b}`) || this.blocks.has(`${b}:${a}`);
  }

  // ---- push devices ----

  async addPushDevice(
    userId: string,
    target: PushTarget,
    max: number,
  ): Promise<{ device: PushDeviceRecord; created: boolean } | null> {
    this.check("addPushDevice");
    const id = pushDeviceId(userId, target);
    const existing = this.pushDevices.get(id);
    if (existing) return { device: { ...existing }, created: false };
    if ([...this.pushDevices.values()].filter((d) => d.userId === userId).length >= max) return null;
    const device: PushDeviceRecord = { ...target, id, userId, createdAt: new Date() };
    this.pushDevices.set(id, device);
    return { device: { ...device }, created: true };
  }

  async pushDevicesOf(userIds: readonly string[]): Promise<PushDeviceRecord[]> {
    this.check("pushDevicesOf");
    const wanted = new Set(userIds);
    return [...this.pushDevices.values()]
      .filter((d) => wanted.has(d.userId))
      .map((d) => ({ ...d }))
      .sort((x, y) => x.createdAt.getTime() - y.createdAt.getTime());
  }

  async removePushDevice(userId: string, id: string): Promise<boolean> {
    this.check("removePushDevice");
    const d = this.pushDevices.get(id);
    if (d?.userId !== userId) return false;
    return this.pushDevices.delete(id);
  }

  // ---- files ----

  async saveFile(
    meta: Omit<FileRecord, "id" | "size" | "createdAt">,
    content: Readable,
  ): Promise<FileRecord> {
    this.check("saveFile");
    const parts: Buffer[] = [];
    for await (const c of content) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
    const bytes = Buffer.concat(parts);
    const record: FileRecord = { id: objectId(), ...meta, size: bytes.length, createdAt: new Date() };
    this.files.set(record.id, { record, content: bytes });
    return copy(record);
  }

  async getFile(id: string): Promise<FileRecord | null> {
    this.check("getFile");
    const f = this.files.get(id);
    return f ? copy(f.record) : null;
  }

  async getFiles(ids: readonly string[]): Promise<FileRecord[]> {
    this.check("getFiles");
    return [...new Set(ids)].flatMap((id) => {
      const f = this.files.get(id);
      return f ? [copy(f.record)] : [];
    });
  }

  openFile(id: string): Readable {
    this.check("openFile");
    if (!isObjectId(id)) throw new ProtocolError("NOT_FOUND", "no such file");
    const f = this.files.get(id);
    if (!f) {
      const r = new Readable({ read() {} });
      process.nextTick(() => r.destroy(new Error(`FileNotFound: file ${id} was not found`)));
      return r;
    }
    return Readable.from([Buffer.from(f.content)]);
  }

  async deleteFile(id: string): Promise<void> {
    this.check("deleteFile");
    this.files.delete(id);
  }

  // ---- lifecycle ----

  async ping(): Promise<boolean> {
    return !this.unavailable;
  }

  async close(): Promise<void> {}
}
