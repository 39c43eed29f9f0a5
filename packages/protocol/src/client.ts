/**
 * @vibetalk/protocol for browsers: the types and the values that need no zod (limits, constants), so
 * the web client's bundle carries none of the schemas (docs/chat-node.md, "The web client").
 * Servers import the package's main entry, which validates with the schemas.
 */
export * from "./limits.js";
export * from "./constants.js";
export type * from "./types.js";
export type { ErrorCode, ErrorInfo, ErrorBody } from "./errors.js";
export * from "./roles.js";
// The shared fold is pure (types only from zod's side), so the browser folds as the server does.
export { foldEvents, kindOf, previewOf, type FoldInput } from "./fold.js";
