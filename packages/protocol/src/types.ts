import type { z } from "zod";
import type * as s from "./schemas.js";

type Out<T extends z.ZodType> = z.output<T>;
type Sch = s.ProtocolSchemas;

export type UserId = string;
export type ChannelId = string;
export type Role = Out<typeof s.RoleSchema>;
export type ChannelType = Out<typeof s.ChannelTypeSchema>;
export type PostingPolicy = Out<typeof s.PostingPolicySchema>;
export type ReceiptKind = Out<typeof s.ReceiptKindSchema>;

export type User = Out<typeof s.UserSchema>;
export type Message = Out<typeof s.MessageSchema>;
export type MessageKind = Out<typeof s.MessageKindSchema>;
export type FoldedMessage = Out<typeof s.FoldedMessageSchema>;
export type Edited = Out<typeof s.EditedSchema>;
export type Deleted = Out<typeof s.DeletedSchema>;
export type ReactionSummary = Out<typeof s.ReactionSummarySchema>;
export type Quote = Out<typeof s.QuoteSchema>;
export type MessagePreview = Out<typeof s.MessagePreviewSchema>;
export type Channel = Out<typeof s.ChannelSchema>;
export type ChannelSummary = Out<typeof s.ChannelSummarySchema>;
export type Member = Out<typeof s.MemberSchema>;
export type FileInfo = Out<typeof s.FileInfoSchema>;
export type Presence = Out<typeof s.PresenceSchema>;

export type RegisterBody = Out<Sch["RegisterBody"]>;
export type LoginBody = Out<Sch["LoginBody"]>;
export type ChangePasswordBody = Out<Sch["ChangePasswordBody"]>;
export type UsersQuery = Out<Sch["UsersQuery"]>;
export type CreateChannelBody = Out<Sch["CreateChannelBody"]>;
export type ChannelsQuery = Out<Sch["ChannelsQuery"]>;
export type RenameChannelBody = Out<Sch["RenameChannelBody"]>;
export type AddMembersBody = Out<Sch["AddMembersBody"]>;
export type UpdateMemberBody = Out<Sch["UpdateMemberBody"]>;
export type PinBody = Out<Sch["PinBody"]>;
export type OfficialPostBody = Out<Sch["OfficialPostBody"]>;
export type MessagesQuery = Out<Sch["MessagesQuery"]>;

export type MessageSend = Out<Sch["MessageSend"]>;
export type MessageEdit = Out<Sch["MessageEdit"]>;
export type MessageDelete = Out<Sch["MessageDelete"]>;
export type MessageReact = Out<Sch["MessageReact"]>;
export type ReceiptSend = Out<Sch["ReceiptSend"]>;
export type TypingSend = Out<Sch["TypingSend"]>;
export type PresenceSubscribe = Out<Sch["PresenceSubscribe"]>;
export type SyncRequest = Out<Sch["SyncRequest"]>;

export type AuthReply = Out<typeof s.AuthReplySchema>;
export type MeReply = Out<typeof s.MeReplySchema>;
export type UsersReply = Out<typeof s.UsersReplySchema>;
export type ChannelReply = Out<typeof s.ChannelReplySchema>;
export type ChannelsReply = Out<typeof s.ChannelsReplySchema>;
export type ChannelDetailsReply = Out<typeof s.ChannelDetailsReplySchema>;
export type OfficialPostReply = Out<typeof s.OfficialPostReplySchema>;
export type MessagesReply = Out<typeof s.MessagesReplySchema>;
export type FileReply = Out<typeof s.FileReplySchema>;
export type BlocksReply = Out<typeof s.BlocksReplySchema>;
export type ReadyReply = Out<typeof s.ReadyReplySchema>;
export type ConnectionsReply = Out<typeof s.ConnectionsReplySchema>;

export type FailureReply = Out<typeof s.FailureReplySchema>;
export type MessageSendReply = Out<typeof s.MessageSendReplySchema>;
export type MessageChangeReply = Out<typeof s.MessageChangeReplySchema>;
export type ReceiptReply = Out<typeof s.ReceiptReplySchema>;
export type TypingReply = Out<typeof s.TypingReplySchema>;
export type PresenceSubscribeReply = Out<typeof s.PresenceSubscribeReplySchema>;
export type SyncReply = Out<typeof s.SyncReplySchema>;

export type MessageEvent = Out<typeof s.MessageEventSchema>;
export type ReceiptEvent = Out<typeof s.ReceiptEventSchema>;
export type ReceiptCountsEvent = Out<typeof s.ReceiptCountsEventSchema>;
export type TypingEvent = Out<typeof s.TypingEventSchema>;
export type PresenceEvent = Out<typeof s.PresenceEventSchema>;
export type ChannelChange = Out<typeof s.ChannelChangeSchema>;
export type ChannelEvent = Out<typeof s.ChannelEventSchema>;
export type ReconnectEvent = Out<typeof s.ReconnectEventSchema>;
export type MessageFailedEvent = Out<typeof s.MessageFailedEventSchema>;
export type SessionEndedEvent = Out<typeof s.SessionEndedEventSchema>;

/** Socket.IO events a client emits, each with its payload and ack reply. */
export interface ClientToServerEvents {
  "message:send": (payload: MessageSend, ack: (reply: MessageSendReply) => void) => void;
  "message:edit": (payload: MessageEdit, ack: (reply: MessageChangeReply) => void) => void;
  "message:delete": (payload: MessageDelete, ack: (reply: MessageChangeReply) => void) => void;
  "message:react": (payload: MessageReact, ack: (reply: MessageChangeReply) => void) => void;
  receipt: (payload: ReceiptSend, ack: (reply: ReceiptReply) => void) => void;
  typing: (payload: TypingSend, ack?: (reply: TypingReply) => void) => void;
  "presence:subscribe": (payload: PresenceSubscribe, ack: (reply: PresenceSubscribeReply) => void) => void;
  sync: (payload: SyncRequest, ack: (reply: SyncReply) => void) => void;
}

/** Socket.IO events a server emits. */
export interface ServerToClientEvents {
  message: (event: MessageEvent) => void;
  receipt: (event: ReceiptEvent) => void;
  "receipt:counts": (event: ReceiptCountsEvent) => void;
  typing: (event: TypingEvent) => void;
  presence: (event: PresenceEvent) => void;
  channel: (event: ChannelEvent) => void;
  reconnect: (event: ReconnectEvent) => void;
  "message:failed": (event: MessageFailedEvent) => void;
  "session:ended": (event: SessionEndedEvent) => void;
}
