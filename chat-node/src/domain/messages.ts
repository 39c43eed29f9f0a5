import type { Message } from "@vibetalk/protocol";
export { previewOf } from "@vibetalk/protocol";
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
  ...eventFields(),
});
export type AcceptedMessage = z.infer<typeof AcceptedMessageSchema>;

/**
 * What makes an event more than a plain message (docs/protocol.md, "Conversations"); each field is
 * absent when it does not apply, so a plain message is stored and read exactly as before.
 */
function eventFields() {
  return {
    kind: z.enum(["edit", "delete", "reaction"]).optional(),
    targetSeq: z.number().int().min(1).optional(),
    replyTo: z.number().int().min(1).optional(),
    emoji: z.string().optional(),
    on: z.boolean().optional(),
    mentions: z.array(z.string()).optional(),
  };
}
const EventFieldsSchema = z.object(eventFields());
export type EventFields = z.infer<typeof EventFieldsSchema>;
const EVENT_KEYS = Object.keys(EventFieldsSchema.shape) as Array<keyof EventFields>;

/** The event fields of `m` that are set (pure): what a document or a wire message carries. */
export function eventFieldsOf(m: EventFields): EventFields {
  const out: Record<string, unknown> = {};
  for (const k of EVENT_KEYS) if (m[k] !== undefined) out[k] = m[k];
  return out as EventFields;
}

/** A stored message or event: the unit of the `messages` collection. */
export interface StoredMessage extends EventFields {
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
    ...eventFieldsOf(m),
  };
}

/** Idempotency key of a message within its channel. */
export function idempotencyKey(m: { senderId: string; clientMsgId: string }): string {
  return `${m.senderId}\u0000${m.clientMsgId}`;
}
