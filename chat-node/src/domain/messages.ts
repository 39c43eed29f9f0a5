import type { Message } from "@vibetalk/protocol";
import { PREVIEW_CHARS } from "@vibetalk/protocol";
import { z } from "zod";

/**
 * A message as accepted by a chat-node and published to its channel's partition queue; the schema
 * checks what a partition consumer reads back (a malformed payload is parked, never stored).
 */
export const AcceptedMessageSchema = z.object({
  channelId: z.string().min(1),
  senderId: z.string().min(1),
  clientMsgId: z.string().min(1),
  body: z.string(),
  fileIds: z.array(z.string()),
  /** When the chat-node accepted it (ms since the epoch); becomes `createdAt`. */
  sentAt: z.number(),
});
export type AcceptedMessage = z.infer<typeof AcceptedMessageSchema>;

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
