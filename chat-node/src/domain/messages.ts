import type { Message } from "@vibetalk/protocol";
import { PREVIEW_CHARS } from "@vibetalk/protocol";

/** A message as accepted by a chat-node and published to its channel's partition queue. */
export interface AcceptedMessage {
  channelId: string;
  senderId: string;
  clientMsgId: string;
  body: string;
  fileIds: string[];
  /** When the chat-node accepted it (ms since the epoch); becomes `createdAt`. */
  sentAt: number;
}

/** A stored message: the unit of the `messages` collection. */
export interface StoredMessage {
  id: string;
  channelId: string;
  seq: number;
  senderId: string;
  clientMsgId: string;
  body: string;
  fileIds: string[];
  createdAt: Date;
}

export function toWire(m: StoredMessage): Message {
  return {
    channelId: m.channelId,
    seq: m.seq,
    id: m.id,
    senderId: m.senderId,
    clientMsgId: m.clientMsgId,
    body: m.body,
    fileIds: m.fileIds,
    createdAt: m.createdAt.toISOString(),
  };
}

export function previewOf(body: string): string {
  const chars = Array.from(body);
  return chars.length <= PREVIEW_CHARS ? body : `${chars.slice(0, PREVIEW_CHARS - 1).join("")}…`;
}

/** Idempotency key of a message within its channel. */
export function idempotencyKey(m: { senderId: string; clientMsgId: string }): string {
  return `${m.senderId}\u0000${m.clientMsgId}`;
}
