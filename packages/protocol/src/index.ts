/**
 * @vibetalk/protocol — the contract between VibeTalk clients and chat-nodes.
 * The zod schemas here are the source of truth; docs/protocol.md is rendered from them.
 */
export * from "./limits.js";
export * from "./errors.js";
export * from "./schemas.js";
export type * from "./types.js";
export { renderSchemaReference } from "./reference.js";
export { foldEvents, kindOf, previewOf, type FoldInput } from "./fold.js";

export { PROTOCOL_VERSION, API_PREFIX } from "./constants.js";

export const CLIENT_EVENTS = [
  "message:send",
  "message:edit",
  "message:delete",
  "message:react",
  "receipt",
  "typing",
  "presence:subscribe",
  "sync",
] as const;
export const SERVER_EVENTS = [
  "message",
  "receipt",
  "typing",
  "presence",
  "channel",
  "reconnect",
  "message:failed",
] as const;
