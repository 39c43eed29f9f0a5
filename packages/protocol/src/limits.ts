/**
 * Limits of the client protocol. These are the defaults; a chat-node may be configured with other
 * values, and builds its validation schemas from the values it runs with (see `protocolSchemas`).
 */
export interface Limits {
  /** Maximum message body, in bytes of UTF-8. */
  maxBodyBytes: number;
  /** Maximum number of file ids on one message. */
  maxFileIds: number;
  /** Maximum size of one uploaded file, in bytes. */
  maxFileBytes: number;
  /** Maximum number of members of a group channel (creator included). */
  maxGroupMembers: number;
  /** `message:send` token bucket per socket: refill rate per second. */
  sendRatePerSecond: number;
  /** `message:send` token bucket per socket: burst capacity. */
  sendBurst: number;
  /** Largest `limit` accepted by paged reads. */
  maxPageLimit: number;
  /** `limit` used when a paged read gives none. */
  defaultPageLimit: number;
  /** At most this many channels in one `sync` request. */
  maxSyncChannels: number;
  /** At most this many messages in one `sync` reply (all channels together). */
  maxSyncMessages: number;
  /** At most this many user ids in one `presence:subscribe`. */
  maxPresenceUserIds: number;
  /** At most this many user ids in one add-members request. */
  maxUserIdsPerRequest: number;
  /** An author may edit their message for this many seconds after it was sent. */
  editWindowSeconds: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxBodyBytes: 4096,
  maxFileIds: 10,
  maxFileBytes: 10 * 1024 * 1024,
  maxGroupMembers: 1000,
  sendRatePerSecond: 20,
  sendBurst: 40,
  maxPageLimit: 100,
  defaultPageLimit: 50,
  maxSyncChannels: 100,
  maxSyncMessages: 500,
  maxPresenceUserIds: 500,
  maxUserIdsPerRequest: 100,
  editWindowSeconds: 24 * 60 * 60,
});

/** Fixed shapes (not configurable: changing them breaks clients). */
export const USERNAME_PATTERN = /^[a-z0-9_.-]{3,32}$/;
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;
export const DISPLAY_NAME_MAX = 64;
export const CHANNEL_NAME_MAX = 100;
export const CLIENT_MSG_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** User ids are 24 lower-case hex digits. */
export const USER_ID_PATTERN = /^[a-f0-9]{24}$/;
/** Channel ids: a group's is 24 hex digits, a direct channel's is `dm_<userA>_<userB>` (sorted). */
export const CHANNEL_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const FILE_ID_PATTERN = /^[a-f0-9]{24}$/;
/** Highest `seq` a channel may reach (12 decimal digits in message ids). */
export const MAX_SEQ = 999_999_999_999;
/**
 * Text a client may send for the store to keep (message bodies, display names, group names, file
 * names, and anything else used in a store query): no C0 control character other than tab, line
 * feed and carriage return. PostgreSQL (under FerretDB) cannot hold U+0000 in a string at all; the
 * other controls are refused with it so that FerretDB and MongoDB keep exactly the same texts.
 */
// eslint-disable-next-line no-control-regex
export const STORABLE_TEXT_PATTERN = /^[^\u0000-\u0008\u000B\u000C\u000E-\u001F]*$/;
/** An unpaired UTF-16 surrogate, which UTF-8 (and so the store) cannot represent. */
export const LONE_SURROGATE_PATTERN =
  /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** A reaction's emoji: 1 to this many bytes of UTF-8, no whitespace or control character. */
export const EMOJI_MAX_BYTES = 32;
/** `@username` in a message body: a mention when the username is a member of the channel. */
export const MENTION_PATTERN = /(?<![A-Za-z0-9_.-])@([A-Za-z0-9_.-]{3,32})/g;
/** Push devices (docs/protocol.md, "Push notifications"): bounded lengths of what a client registers. */
export const PUSH_KEY_MAX = 512;
export const PUSH_APP_ID_MAX = 64;
export const PUSH_ENDPOINT_MAX = 2048;
/** Web Push keys are base64url: p256dh a 65-byte P-256 point (87 characters), auth 16 bytes (22). */
export const PUSH_P256DH_PATTERN = /^[A-Za-z0-9_-]{80,100}={0,2}$/;
export const PUSH_AUTH_PATTERN = /^[A-Za-z0-9_-]{16,32}={0,2}$/;
/** Push device ids are 24 hex digits. */
export const PUSH_DEVICE_ID_PATTERN = /^[a-f0-9]{24}$/;
/** Length of the preview of the last message kept on a channel. */
export const PREVIEW_CHARS = 120;

/** The official group's fixed channel id (docs/protocol.md, "The official group"). */
export const OFFICIAL_CHANNEL_ID = "official";
/** The sender id of messages posted as the service in the official group (24 zeros: no user has it). */
export const SERVICE_SENDER_ID = "000000000000000000000000";
