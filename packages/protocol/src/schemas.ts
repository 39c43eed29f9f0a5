import { z } from "zod";
import { ErrorCodeSchema, ErrorInfoSchema } from "./errors.js";
import {
  CHANNEL_ID_PATTERN,
  CHANNEL_NAME_MAX,
  CLIENT_MSG_ID_PATTERN,
  DEFAULT_LIMITS,
  DISPLAY_NAME_MAX,
  EMOJI_MAX_BYTES,
  FILE_ID_PATTERN,
  LONE_SURROGATE_PATTERN,
  MAX_SEQ,
  PASSWORD_MAX,
  PASSWORD_MIN,
  PUSH_APP_ID_MAX,
  PUSH_AUTH_PATTERN,
  PUSH_DEVICE_ID_PATTERN,
  PUSH_ENDPOINT_MAX,
  PUSH_KEY_MAX,
  PUSH_P256DH_PATTERN,
  STORABLE_TEXT_PATTERN,
  USERNAME_PATTERN,
  USER_ID_PATTERN,
  type Limits,
} from "./limits.js";

const encoder = new TextEncoder();
/** Length of a string in bytes of UTF-8. */
export function utf8Bytes(s: string): number {
  return encoder.encode(s).length;
}

// ---------------------------------------------------------------------------------------------
// Building blocks (limit-independent)
// ---------------------------------------------------------------------------------------------

export const CONTROL_CHARACTERS_MESSAGE =
  "must not contain control characters (U+0000-U+001F other than tab, line feed and carriage return)";
export const LONE_SURROGATE_MESSAGE = "must be well-formed Unicode (no unpaired surrogate)";

/**
 * Text the store keeps exactly as sent: no NUL or other C0 control (tab, line feed and carriage
 * return are fine) and no unpaired surrogate. Both are INVALID_ARGUMENT, over HTTP and Socket.IO.
 */
export function storableText<T extends z.ZodString>(schema: T): T {
  return schema
    .regex(STORABLE_TEXT_PATTERN, CONTROL_CHARACTERS_MESSAGE)
    .refine((s) => !LONE_SURROGATE_PATTERN.test(s), LONE_SURROGATE_MESSAGE) as T;
}

export const UserIdSchema = z.string().regex(USER_ID_PATTERN, "a user id is 24 hex digits");
export const ChannelIdSchema = z.string().regex(CHANNEL_ID_PATTERN, "a channel id is 1-64 of [A-Za-z0-9_-]");
export const FileIdSchema = z.string().regex(FILE_ID_PATTERN, "a file id is 24 hex digits");
export const ClientMsgIdSchema = z
  .string()
  .regex(CLIENT_MSG_ID_PATTERN, "a clientMsgId is 1-64 of [A-Za-z0-9_-]");
export const SeqSchema = z.number().int().min(1).max(MAX_SEQ);
/** A `seq` position: 0 means "before the first message". */
export const SeqPositionSchema = z.number().int().min(0).max(MAX_SEQ);
export const IsoDateSchema = z.iso.datetime({ offset: true });
export const UsernameSchema = z
  .string()
  .min(3)
  .max(32)
  .describe("3-32 of [a-z0-9_.-], lower-cased before the check")
  .transform((s) => s.toLowerCase())
  .pipe(z.string().regex(USERNAME_PATTERN, "a username is 3-32 of [a-z0-9_.-]"));
export const PasswordSchema = z.string().min(PASSWORD_MIN).max(PASSWORD_MAX);
export const DisplayNameSchema = storableText(z.string().trim().min(1).max(DISPLAY_NAME_MAX));
export const ChannelNameSchema = storableText(z.string().trim().min(1).max(CHANNEL_NAME_MAX));
/** The name of an uploaded file (multipart `filename`); the server cuts it to 200 characters. */
export const FileNameSchema = storableText(z.string());
/** `official`: the installation's one official group (id `official`), every account a member. */
export const ChannelTypeSchema = z.enum(["direct", "group", "official"]);
/** Who may post in the official group: `admins` (its admins and the service) or `everyone`. */
export const PostingPolicySchema = z.enum(["everyone", "admins"]);
export const RoleSchema = z.enum(["owner", "admin", "member"]);
export const ReceiptKindSchema = z.enum(["delivered", "read"]);
export const CursorSchema = z.string().min(1).max(200);
/** What a stored event of a channel is: a plain message, or an edit, delete or reaction of one. */
export const MessageKindSchema = z.enum(["message", "edit", "delete", "reaction"]);
/** A reaction's emoji: 1-32 bytes of UTF-8, no whitespace and no control character. */
export const EmojiSchema = storableText(
  z
    .string()
    .min(1)
    .regex(/^\S+$/u, "an emoji has no whitespace")
    .refine((e) => utf8Bytes(e) <= EMOJI_MAX_BYTES, {
      message: `an emoji is at most ${EMOJI_MAX_BYTES} bytes`,
    }),
);

// ---------------------------------------------------------------------------------------------
// Resources (server → client)
// ---------------------------------------------------------------------------------------------

export const UserSchema = z.object({
  id: UserIdSchema,
  username: z.string(),
  displayName: z.string(),
  lastSeenAt: IsoDateSchema.nullable(),
  createdAt: IsoDateSchema,
});

export const MessageSchema = z.object({
  channelId: ChannelIdSchema,
  seq: SeqSchema,
  /** `<channelId>:<seq, 12 digits zero-padded>` */
  id: z.string(),
  senderId: UserIdSchema,
  clientMsgId: ClientMsgIdSchema,
  body: z.string(),
  fileIds: z.array(FileIdSchema),
  createdAt: IsoDateSchema,
  /** Absent (or "message") for a plain message: data stored before kinds existed reads as before. */
  kind: MessageKindSchema.optional(),
  /** edit, delete, reaction: the seq of the plain message it acts on. */
  targetSeq: SeqSchema.optional(),
  /** A plain message that quotes an earlier plain message of the channel. */
  replyTo: SeqSchema.optional(),
  /** reaction: the emoji, and whether this user adds (`true`) or removes (`false`) it. */
  emoji: z.string().optional(),
  on: z.boolean().optional(),
  /** Plain message and edit: ids of the members named by `@username` in the body. */
  mentions: z.array(UserIdSchema).optional(),
});

/** The latest edit of a folded message. */
export const EditedSchema = z.object({
  body: z.string(),
  editedAt: IsoDateSchema,
  /** The seq of the edit event that gave this body. */
  versionSeq: SeqSchema,
  mentions: z.array(UserIdSchema),
});
/** A deleted message's tombstone: its body, files, mentions, edits and reactions are gone. */
export const DeletedSchema = z.object({
  seq: SeqSchema,
  /** The author, or the group admin or owner who deleted it. */
  by: UserIdSchema,
  deletedAt: IsoDateSchema,
});
export const ReactionSummarySchema = z.object({
  emoji: z.string(),
  /** Who reacted with it, sorted; its count is their number. */
  userIds: z.array(UserIdSchema),
});
/** The message a reply quotes, as it reads now. */
export const QuoteSchema = z.object({
  seq: SeqSchema,
  senderId: UserIdSchema,
  /** Its current body cut to PREVIEW_CHARS characters; empty when deleted. */
  body: z.string(),
  hasFiles: z.boolean(),
  deleted: z.boolean(),
});
/**
 * A plain message with the events that target it folded in (`foldEvents`): what history returns.
 * `edited`, `deleted` and `quote` are null when there is none (for `quote`: no `replyTo`, or the
 * quoted message was not among the folded events).
 */
export const FoldedMessageSchema = MessageSchema.extend({
  edited: EditedSchema.nullable(),
  deleted: DeletedSchema.nullable(),
  reactions: z.array(ReactionSummarySchema),
  quote: QuoteSchema.nullable(),
});

export const MessagePreviewSchema = z.object({
  seq: SeqSchema,
  senderId: UserIdSchema,
  /** The body cut to PREVIEW_CHARS characters. */
  body: z.string(),
  hasFiles: z.boolean(),
  createdAt: IsoDateSchema,
  /** True when the message was deleted (its body is then empty). */
  deleted: z.boolean().optional(),
  /** True when the message was edited (the body is then its latest edit's). */
  edited: z.boolean().optional(),
});

export const ChannelSchema = z.object({
  id: ChannelIdSchema,
  type: ChannelTypeSchema,
  /** The group's name; null for a direct channel. */
  name: z.string().nullable(),
  createdBy: UserIdSchema,
  createdAt: IsoDateSchema,
  lastSeq: SeqPositionSchema,
  lastMessage: MessagePreviewSchema.nullable(),
  /** Time of the last message, or of creation when there is none. */
  lastMessageAt: IsoDateSchema,
  memberCount: z.number().int().min(0),
  /** The official group only: who may post. */
  posting: PostingPolicySchema.optional(),
  /** The official group only: the `seq` of the pinned message, null when none is pinned. */
  pinnedSeq: SeqSchema.nullable().optional(),
});

/** One entry of the recent-chats list: the channel seen by the caller. */
export const ChannelSummarySchema = ChannelSchema.extend({
  role: RoleSchema,
  lastReadSeq: SeqPositionSchema,
  lastDeliveredSeq: SeqPositionSchema,
  /** `lastSeq - lastReadSeq`, never below 0. */
  unread: z.number().int().min(0),
  /** Unread messages (seq above `lastReadSeq`) that mention the caller; reading resets it like `unread`. */
  mentions: z.number().int().min(0),
  /** The caller muted this channel (PUT /channels/:id/mute); unread is counted all the same. */
  muted: z.boolean(),
  /** For a direct channel, the other user; null for a group. */
  peer: UserSchema.nullable(),
});

export const MemberSchema = z.object({
  userId: UserIdSchema,
  username: z.string(),
  displayName: z.string(),
  role: RoleSchema,
  joinedAt: IsoDateSchema,
  lastDeliveredSeq: SeqPositionSchema,
  lastReadSeq: SeqPositionSchema,
});

export const FileInfoSchema = z.object({
  id: FileIdSchema,
  channelId: ChannelIdSchema,
  uploaderId: UserIdSchema,
  name: z.string(),
  size: z.number().int().min(0),
  contentType: z.string(),
  createdAt: IsoDateSchema,
});

export const PresenceSchema = z.object({
  userId: UserIdSchema,
  online: z.boolean(),
  lastSeenAt: IsoDateSchema.nullable(),
});

// ---------------------------------------------------------------------------------------------
// Schemas whose bounds come from the configured limits
// ---------------------------------------------------------------------------------------------

/** A push gateway's device key: printable ASCII without spaces (APNs and FCM tokens are). */
export const PushKeySchema = z
  .string()
  .min(1)
  .max(PUSH_KEY_MAX)
  .regex(/^[\x21-\x7E]+$/, "a pushKey is printable ASCII without spaces");
export const PushAppIdSchema = z
  .string()
  .max(PUSH_APP_ID_MAX)
  .regex(/^[A-Za-z0-9._-]+$/, `an appId is 1-${PUSH_APP_ID_MAX} of [A-Za-z0-9._-]`);
/**
 * A Web Push endpoint: an http(s) URL. The node accepts https only, or http to a loopback address
 * when PUSH_ALLOW_HTTP_LOOPBACK is set (docs/chat-node.md, "Push notifications").
 */
export const PushEndpointSchema = z
  .string()
  .max(PUSH_ENDPOINT_MAX)
  .pipe(z.url({ protocol: /^https?$/, hostname: z.regexes.hostname }));
export const PushDeviceKindSchema = z.enum(["gateway", "webpush"]);
export const PushDeviceSchema = z.object({
  id: z.string().regex(PUSH_DEVICE_ID_PATTERN),
  kind: PushDeviceKindSchema,
  /** The gateway key, or the Web Push endpoint. */
  pushKey: z.string().optional(),
  appId: z.string().optional(),
  endpoint: z.string().optional(),
  createdAt: IsoDateSchema,
});

function pageLimit(limits: Limits) {
  return z.coerce.number().int().min(1).max(limits.maxPageLimit).optional();
}

/** Query-string number (`?afterSeq=3`). */
const QuerySeqPosition = z.coerce.number().int().min(0).max(MAX_SEQ);

/** Builds every request schema for the given limits. */
export function protocolSchemas(limits: Limits = DEFAULT_LIMITS) {
  const MessageBody = storableText(
    z.string().refine((s) => utf8Bytes(s) <= limits.maxBodyBytes, {
      message: `body is at most ${limits.maxBodyBytes} bytes of UTF-8`,
      params: { code: "PAYLOAD_TOO_LARGE" },
    }),
  );

  // ---- HTTP requests ----
  const RegisterBody = z.object({
    username: UsernameSchema,
    password: PasswordSchema,
    displayName: DisplayNameSchema.optional(),
  });
  const LoginBody = z.object({
    username: storableText(z.string().min(1).max(64)),
    password: z.string().min(1).max(PASSWORD_MAX),
  });
  const ChangePasswordBody = z.object({
    currentPassword: z.string().min(1).max(PASSWORD_MAX),
    newPassword: PasswordSchema,
  });
  const UsersQuery = z.object({
    query: storableText(z.string().max(32)).default(""),
    cursor: CursorSchema.optional(),
    limit: pageLimit(limits),
  });
  const CreateChannelBody = z.discriminatedUnion("type", [
    z.object({ type: z.literal("direct"), userId: UserIdSchema }),
    z.object({
      type: z.literal("group"),
      name: ChannelNameSchema,
      memberIds: z
        .array(UserIdSchema)
        .max(limits.maxGroupMembers - 1)
        .default([]),
    }),
  ]);
  const ChannelsQuery = z.object({ cursor: CursorSchema.optional(), limit: pageLimit(limits) });
  const RenameChannelBody = z
    .object({ name: ChannelNameSchema.optional(), posting: PostingPolicySchema.optional() })
    .refine((b) => b.name !== undefined || b.posting !== undefined, {
      message: "give name, or posting (official group only)",
    });
  const PinBody = z.object({ seq: SeqSchema });
  const OfficialPostBody = z
    .object({ clientMsgId: ClientMsgIdSchema, body: MessageBody })
    .refine((m) => m.body.trim().length > 0, { message: "a message needs a non-blank body", path: ["body"] });
  const OfficialMemberParams = z.object({ userId: UserIdSchema });
  const AddMembersBody = z.object({ userIds: z.array(UserIdSchema).min(1).max(limits.maxUserIdsPerRequest) });
  const UpdateMemberBody = z.object({ role: z.enum(["admin", "member"]) });
  const MessagesQuery = z
    .object({
      beforeSeq: QuerySeqPosition.optional(),
      afterSeq: QuerySeqPosition.optional(),
      limit: pageLimit(limits),
    })
    .refine((q) => q.beforeSeq === undefined || q.afterSeq === undefined || q.afterSeq < q.beforeSeq, {
      message: "afterSeq must be below beforeSeq",
    });
  const ChannelIdParams = z.object({ id: ChannelIdSchema });
  const MemberParams = z.object({ id: ChannelIdSchema, userId: UserIdSchema });
  const UserIdParams = z.object({ userId: UserIdSchema });
  const FileIdParams = z.object({ id: FileIdSchema });
  const UploadQuery = z.object({ channelId: ChannelIdSchema });
  const UploadFile = z.object({ filename: FileNameSchema });
  const PushDeviceBody = z.discriminatedUnion("kind", [
    z.object({ kind: z.literal("gateway"), pushKey: PushKeySchema, appId: PushAppIdSchema.optional() }),
    z.object({
      kind: z.literal("webpush"),
      subscription: z.object({
        endpoint: PushEndpointSchema,
        keys: z.object({
          p256dh: z.string().regex(PUSH_P256DH_PATTERN, "keys.p256dh is a base64url P-256 public key"),
          auth: z.string().regex(PUSH_AUTH_PATTERN, "keys.auth is a base64url 16-byte secret"),
        }),
      }),
    }),
  ]);
  const PushDeviceIdParams = z.object({
    id: z.string().regex(PUSH_DEVICE_ID_PATTERN, "a device id is 24 hex digits"),
  });

  // ---- Socket.IO client → server ----
  const MessageSend = z
    .object({
      channelId: ChannelIdSchema,
      clientMsgId: ClientMsgIdSchema,
      body: MessageBody,
      fileIds: z.array(FileIdSchema).max(limits.maxFileIds).optional(),
      replyTo: SeqSchema.optional(),
    })
    .refine((m) => m.body.trim().length > 0 || (m.fileIds?.length ?? 0) > 0, {
      message: "a message needs a non-blank body or at least one file",
      path: ["body"],
    });
  const MessageEdit = z.object({
    channelId: ChannelIdSchema,
    clientMsgId: ClientMsgIdSchema,
    targetSeq: SeqSchema,
    body: MessageBody.refine((b) => b.trim().length > 0, "an edit needs a non-blank body"),
  });
  const MessageDelete = z.object({
    channelId: ChannelIdSchema,
    clientMsgId: ClientMsgIdSchema,
    targetSeq: SeqSchema,
  });
  const MessageReact = z.object({
    channelId: ChannelIdSchema,
    clientMsgId: ClientMsgIdSchema,
    targetSeq: SeqSchema,
    emoji: EmojiSchema,
    on: z.boolean(),
  });
  const ReceiptSend = z.object({ channelId: ChannelIdSchema, seq: SeqSchema, kind: ReceiptKindSchema });
  const TypingSend = z.object({ channelId: ChannelIdSchema, typing: z.boolean() });
  const PresenceSubscribe = z.object({ userIds: z.array(UserIdSchema).max(limits.maxPresenceUserIds) });
  const SyncRequest = z.object({
    channels: z
      .array(z.object({ channelId: ChannelIdSchema, afterSeq: SeqPositionSchema }))
      .min(1)
      .max(limits.maxSyncChannels),
  });

  return {
    RegisterBody,
    LoginBody,
    ChangePasswordBody,
    UsersQuery,
    CreateChannelBody,
    ChannelsQuery,
    RenameChannelBody,
    AddMembersBody,
    UpdateMemberBody,
    PinBody,
    OfficialPostBody,
    OfficialMemberParams,
    MessagesQuery,
    ChannelIdParams,
    MemberParams,
    UserIdParams,
    FileIdParams,
    UploadQuery,
    UploadFile,
    PushDeviceBody,
    PushDeviceIdParams,
    MessageSend,
    MessageEdit,
    MessageDelete,
    MessageReact,
    ReceiptSend,
    TypingSend,
    PresenceSubscribe,
    SyncRequest,
  };
}

export type ProtocolSchemas = ReturnType<typeof protocolSchemas>;
/** The schemas for the default limits. */
export const schemas: ProtocolSchemas = protocolSchemas(DEFAULT_LIMITS);

// ---------------------------------------------------------------------------------------------
// HTTP replies
// ---------------------------------------------------------------------------------------------

export const AuthReplySchema = z.object({ token: z.string(), user: UserSchema });
export const MeReplySchema = z.object({ user: UserSchema });
export const UsersReplySchema = z.object({ users: z.array(UserSchema), nextCursor: z.string().nullable() });
export const ChannelReplySchema = z.object({ channel: ChannelSchema });
export const ChannelsReplySchema = z.object({
  channels: z.array(ChannelSummarySchema),
  nextCursor: z.string().nullable(),
});
/** Who posts as the service in the official group: SERVICE_SENDER_ID and the group's display name. */
export const ServiceSenderSchema = z.object({ userId: UserIdSchema, displayName: z.string() });
export const ChannelDetailsReplySchema = z.object({
  channel: ChannelSchema,
  /** Every member; for the official group only its owner and admins (all accounts are members). */
  members: z.array(MemberSchema),
  /** The official group only: members online now (every account is a member). */
  onlineCount: z.number().int().min(0).optional(),
  /** The official group only: the pinned message, null when none is pinned. */
  pinned: MessageSchema.nullable().optional(),
  /** The official group only: the sender of messages posted as the service. */
  service: ServiceSenderSchema.optional(),
});
/** POST /official/messages: the message as the partition will store it (seq comes later). */
export const OfficialPostReplySchema = z.object({ ok: z.literal(true), clientMsgId: ClientMsgIdSchema });
/**
 * A history page: the plain messages among the events with `fromSeq <= seq <= toSeq`, each folded
 * with every event that targets it (wherever that event is). The range holds `limit` seqs unless it
 * reached an end; 0 and 0 when it is empty.
 */
export const MessagesReplySchema = z.object({
  messages: z.array(FoldedMessageSchema),
  fromSeq: SeqPositionSchema,
  toSeq: SeqPositionSchema,
});
export const FileReplySchema = z.object({ file: FileInfoSchema });
/** GET /blocks: the users the caller blocks, oldest first. */
export const BlocksReplySchema = z.object({
  blocks: z.array(z.object({ userId: UserIdSchema, createdAt: IsoDateSchema })),
});
/** POST /push/devices: the device as registered (an existing one for the same key is returned). */
export const PushDeviceReplySchema = z.object({ device: PushDeviceSchema });
/** GET /push/devices: the caller's devices, oldest first. */
export const PushDevicesReplySchema = z.object({ devices: z.array(PushDeviceSchema) });
/** GET /push/vapid: the VAPID public key for PushManager.subscribe (null when Web Push is off). */
export const VapidReplySchema = z.object({ publicKey: z.string().nullable() });
export const OkReplySchema = z.object({ ok: z.literal(true) });
export const HealthReplySchema = z.object({ status: z.literal("ok") });
export const ReadyReplySchema = z.object({
  ready: z.boolean(),
  checks: z.object({
    broker: z.boolean(),
    redis: z.boolean(),
    store: z.boolean(),
    draining: z.boolean(),
    /** False while RabbitMQ blocks publishing (memory or disk alarm): sends answer UNAVAILABLE. */
    publishing: z.boolean(),
  }),
});
export const ConnectionsReplySchema = z.object({ connections: z.number().int().min(0) });

// ---------------------------------------------------------------------------------------------
// Socket.IO acks (server → client replies to client events)
// ---------------------------------------------------------------------------------------------

export const FailureReplySchema = z.object({ ok: z.literal(false), error: ErrorInfoSchema });
function reply<T extends z.ZodRawShape>(shape: T) {
  return z.union([z.object({ ok: z.literal(true), ...shape }), FailureReplySchema]);
}
export const MessageSendReplySchema = reply({ clientMsgId: ClientMsgIdSchema });
/** The ack of `message:edit`, `message:delete` and `message:react`. */
export const MessageChangeReplySchema = reply({ clientMsgId: ClientMsgIdSchema });
export const ReceiptReplySchema = reply({});
export const TypingReplySchema = reply({});
export const PresenceSubscribeReplySchema = reply({ presence: z.array(PresenceSchema) });
export const SyncReplySchema = reply({
  messages: z.array(MessageSchema),
  /** Channels that have more messages than this reply carried: page them with REST. */
  more: z.array(ChannelIdSchema),
});

// ---------------------------------------------------------------------------------------------
// Socket.IO server → client events
// ---------------------------------------------------------------------------------------------

export const MessageEventSchema = MessageSchema;
export const ReceiptEventSchema = z.object({
  channelId: ChannelIdSchema,
  userId: UserIdSchema,
  kind: ReceiptKindSchema,
  seq: SeqSchema,
});
/**
 * A large channel's receipts, as counts for the sender of message `seq` (docs/protocol.md, "Large
 * channels"): how many other members have it delivered and read. Sent at most once per channel per
 * interval, for the newest message a receipt named in it; earlier messages have at least these counts.
 */
export const ReceiptCountsEventSchema = z.object({
  channelId: ChannelIdSchema,
  seq: SeqSchema,
  delivered: z.number().int().nonnegative(),
  read: z.number().int().nonnegative(),
});
export const TypingEventSchema = z.object({
  channelId: ChannelIdSchema,
  userId: UserIdSchema,
  typing: z.boolean(),
});
export const PresenceEventSchema = PresenceSchema;
/** `settings`: the official group's posting policy or pinned message changed. */
export const ChannelChangeSchema = z.enum(["created", "renamed", "members", "removed", "settings"]);
export const ChannelEventSchema = z.object({
  channel: ChannelSchema,
  /** What happened; `removed` means the receiving user is no longer a member. */
  change: ChannelChangeSchema,
});
/** `draining`: the node is leaving; `rebalance`: the node holds well above the average and sheds some sockets. */
export const ReconnectEventSchema = z.object({ reason: z.enum(["draining", "rebalance"]) });
/**
 * An acked message that the server could not store (the store refused it, or it failed too often):
 * it takes no `seq`, is not delivered, and is kept aside (parked) for an operator. Sent to every
 * socket of the sender. `code` is NOT_STORED.
 */
export const MessageFailedEventSchema = z.object({
  channelId: ChannelIdSchema,
  clientMsgId: ClientMsgIdSchema,
  code: ErrorCodeSchema,
  message: z.string(),
});
/**
 * This socket's session ended (`logout`: its token was logged out; `password_changed`: the user's
 * password changed elsewhere). The server disconnects the socket right after; reconnecting needs a
 * new token.
 */
export const SessionEndedEventSchema = z.object({ reason: z.enum(["logout", "password_changed"]) });
/** Socket.IO `connect_error` data when the handshake is refused. */
export const ConnectErrorDataSchema = z.object({ code: z.string() });
