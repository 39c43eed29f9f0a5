import { z } from "zod";
import * as s from "./schemas.js";

export const REFERENCE_BEGIN =
  "<!-- BEGIN GENERATED SCHEMA REFERENCE (npm run docs -w @vibetalk/protocol) -->";
export const REFERENCE_END = "<!-- END GENERATED SCHEMA REFERENCE -->";

interface Entry {
  title: string;
  schema: z.ZodType;
}

function sections(): Array<{ heading: string; entries: Entry[] }> {
  const r = s.schemas;
  return [
    {
      heading: "HTTP request bodies and queries",
      entries: [
        { title: "POST /auth/register — body", schema: r.RegisterBody },
        { title: "POST /auth/login — body", schema: r.LoginBody },
        { title: "POST /auth/password — body", schema: r.ChangePasswordBody },
        { title: "GET /users — query", schema: r.UsersQuery },
        { title: "POST /channels — body", schema: r.CreateChannelBody },
        { title: "GET /channels — query", schema: r.ChannelsQuery },
        { title: "PATCH /channels/:id — body", schema: r.RenameChannelBody },
        { title: "PUT /channels/:id/pin — body", schema: r.PinBody },
        { title: "POST /official/messages — body", schema: r.OfficialPostBody },
        { title: "POST /channels/:id/members — body", schema: r.AddMembersBody },
        { title: "PATCH /channels/:id/members/:userId — body", schema: r.UpdateMemberBody },
        { title: "GET /channels/:id/messages — query", schema: r.MessagesQuery },
        { title: "POST /files — query", schema: r.UploadQuery },
        { title: "POST /push/devices — body", schema: r.PushDeviceBody },
      ],
    },
    {
      heading: "HTTP replies",
      entries: [
        { title: "AuthReply (register, login, password change)", schema: s.AuthReplySchema },
        { title: "MeReply (GET /me)", schema: s.MeReplySchema },
        { title: "UsersReply (GET /users)", schema: s.UsersReplySchema },
        { title: "ChannelReply (POST /channels, PATCH /channels/:id)", schema: s.ChannelReplySchema },
        { title: "ChannelsReply (GET /channels)", schema: s.ChannelsReplySchema },
        {
          title: "ChannelDetailsReply (GET /channels/:id, member changes)",
          schema: s.ChannelDetailsReplySchema,
        },
        { title: "MessagesReply (GET /channels/:id/messages)", schema: s.MessagesReplySchema },
        { title: "OfficialPostReply (POST /official/messages)", schema: s.OfficialPostReplySchema },
        { title: "FileReply (POST /files, GET /files/:id/meta)", schema: s.FileReplySchema },
        { title: "BlocksReply (GET /blocks)", schema: s.BlocksReplySchema },
        { title: "PushDeviceReply (POST /push/devices)", schema: s.PushDeviceReplySchema },
        { title: "PushDevicesReply (GET /push/devices)", schema: s.PushDevicesReplySchema },
        { title: "VapidReply (GET /push/vapid)", schema: s.VapidReplySchema },
        { title: "ReadyReply (GET /readyz)", schema: s.ReadyReplySchema },
        { title: "ConnectionsReply (GET /internal/connections)", schema: s.ConnectionsReplySchema },
        {
          title: "ErrorBody (every error)",
          schema: z.object({
            error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
          }),
        },
      ],
    },
    {
      heading: "Socket.IO client → server payloads",
      entries: [
        { title: "message:send", schema: r.MessageSend },
        { title: "message:edit", schema: r.MessageEdit },
        { title: "message:delete", schema: r.MessageDelete },
        { title: "message:react", schema: r.MessageReact },
        { title: "receipt", schema: r.ReceiptSend },
        { title: "typing", schema: r.TypingSend },
        { title: "presence:subscribe", schema: r.PresenceSubscribe },
        { title: "sync", schema: r.SyncRequest },
      ],
    },
    {
      heading: "Socket.IO acks",
      entries: [
        { title: "message:send reply", schema: s.MessageSendReplySchema },
        { title: "message:edit, message:delete, message:react reply", schema: s.MessageChangeReplySchema },
        { title: "receipt reply", schema: s.ReceiptReplySchema },
        { title: "presence:subscribe reply", schema: s.PresenceSubscribeReplySchema },
        { title: "sync reply", schema: s.SyncReplySchema },
      ],
    },
    {
      heading: "Socket.IO server → client events",
      entries: [
        { title: "message", schema: s.MessageEventSchema },
        { title: "receipt", schema: s.ReceiptEventSchema },
        { title: "receipt:counts", schema: s.ReceiptCountsEventSchema },
        { title: "typing", schema: s.TypingEventSchema },
        { title: "presence", schema: s.PresenceEventSchema },
        { title: "channel", schema: s.ChannelEventSchema },
        { title: "reconnect", schema: s.ReconnectEventSchema },
        { title: "message:failed", schema: s.MessageFailedEventSchema },
        { title: "session:ended", schema: s.SessionEndedEventSchema },
      ],
    },
  ];
}

function jsonSchema(schema: z.ZodType): string {
  const js = z.toJSONSchema(schema, { io: "input", unrepresentable: "any", target: "draft-2020-12" });
  delete (js as Record<string, unknown>)["$schema"];
  return JSON.stringify(js, null, 2);
}

/** Markdown reference of every schema, as JSON Schema (input side: what a sender may send). */
export function renderSchemaReference(): string {
  const out: string[] = [REFERENCE_BEGIN, ""];
  for (const section of sections()) {
    out.push(`### ${section.heading}`, "");
    for (const e of section.entries) {
      out.push(`#### ${e.title}`, "", "```json", jsonSchema(e.schema), "```", "");
    }
  }
  out.push(REFERENCE_END);
  return out.join("\n");
}

/** Replaces the generated block of a markdown document (or appends one). */
export function withReference(doc: string): string {
  const begin = doc.indexOf(REFERENCE_BEGIN);
  const end = doc.indexOf(REFERENCE_END);
  if (begin < 0 || end < 0) return `${doc.trimEnd()}\n\n${renderSchemaReference()}\n`;
  return doc.slice(0, begin) + renderSchemaReference() + doc.slice(end + REFERENCE_END.length);
}
