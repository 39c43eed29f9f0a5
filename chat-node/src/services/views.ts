import type { Channel, ChannelSummary, FileInfo, Member, User } from "@vibetalk/protocol";
import { unreadCount } from "../domain/receipts.js";
import type { ChannelRecord, FileRecord, MemberRecord, UserRecord } from "../ports.js";

/** Store records → protocol views (pure). */

export function userView(u: UserRecord): User {
  return {
    id: u.id,
    username: u.username,
    displayName: u.displayName,
    lastSeenAt: u.lastSeenAt ? u.lastSeenAt.toISOString() : null,
    createdAt: u.createdAt.toISOString(),
  };
}

export function channelView(c: ChannelRecord): Channel {
  return {
    id: c.id,
    type: c.type,
    name: c.name,
    createdBy: c.createdBy,
    createdAt: c.createdAt.toISOString(),
    lastSeq: c.lastSeq,
    lastMessage: c.lastMessage
      ? {
          seq: c.lastMessage.seq,
          senderId: c.lastMessage.senderId,
          body: c.lastMessage.body,
          hasFiles: c.lastMessage.hasFiles,
          createdAt: new Date(c.lastMessage.createdAt).toISOString(),
          ...(c.lastMessage.deleted ? { deleted: true } : {}),
          ...(c.lastMessage.edited && !c.lastMessage.deleted ? { edited: true } : {}),
        }
      : null,
    lastMessageAt: c.lastMessageAt.toISOString(),
    memberCount: c.memberCount,
    ...(c.type === "official" ? { posting: c.posting ?? "admins", pinnedSeq: c.pinnedSeq ?? null } : {}),
  };
}

export function summaryView(
  c: ChannelRecord,
  m: Pick<MemberRecord, "role" | "lastReadSeq" | "lastDeliveredSeq" | "muted"> & { mentions: number },
  peer: UserRecord | null,
): ChannelSummary {
  return {
    ...channelView(c),
    role: m.role,
    lastReadSeq: m.lastReadSeq,
    lastDeliveredSeq: m.lastDeliveredSeq,
    unread: unreadCount(c.lastSeq, m.lastReadSeq),
    mentions: m.mentions,
    muted: m.muted === true,
    peer: peer ? userView(peer) : null,
  };
}

export function memberView(m: MemberRecord, u: UserRecord | undefined): Member {
  return {
    userId: m.userId,
    username: u?.username ?? "",
    displayName: u?.displayName ?? "",
    role: m.role,
    joinedAt: m.joinedAt.toISOString(),
    lastDeliveredSeq: m.lastDeliveredSeq,
    lastReadSeq: m.lastReadSeq,
  };
}

export function fileView(f: FileRecord): FileInfo {
  return {
    id: f.id,
    channelId: f.channelId,
    uploaderId: f.uploaderId,
    name: f.name,
    size: f.size,
    contentType: f.contentType,
    createdAt: f.createdAt.toISOString(),
  };
}
