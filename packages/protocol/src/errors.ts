import { z } from "zod";

export const ERROR_CODES = [
  "UNAUTHENTICATED",
  "FORBIDDEN",
  "NOT_FOUND",
  "INVALID_ARGUMENT",
  "CONFLICT",
  "PAYLOAD_TOO_LARGE",
  "RATE_LIMITED",
  "UNAVAILABLE",
  "INTERNAL",
  "NOT_STORED",
  "CANNOT_LEAVE",
  "POSTING_RESTRICTED",
  "BLOCKED",
  "EDIT_WINDOW_CLOSED",
  "MESSAGE_DELETED",
  "TOO_MANY_DEVICES",
] as const;

export const ErrorCodeSchema = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCodeSchema>;

/** HTTP status for each error code. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  INVALID_ARGUMENT: 400,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
  // Only in the message:failed event (the send was acked); never an HTTP answer.
  NOT_STORED: 500,
  // The official group: nobody leaves it or is removed from it; only its admins post when posting is `admins`.
  CANNOT_LEAVE: 403,
  POSTING_RESTRICTED: 403,
  // Between two users of whom one blocks the other: no direct messages, no presence.
  BLOCKED: 403,
  // An edit of one's own message after the edit window (LIMIT_EDIT_WINDOW_SECONDS).
  EDIT_WINDOW_CLOSED: 403,
  // An edit, delete, reaction or reply whose target message was deleted.
  MESSAGE_DELETED: 410,
  // A push device registration over the per-user bound (PUSH_MAX_DEVICES): remove one first.
  TOO_MANY_DEVICES: 409,
});

export const ErrorInfoSchema = z.object({
  code: ErrorCodeSchema,
  message: z.string(),
  details: z.unknown().optional(),
});
export type ErrorInfo = z.infer<typeof ErrorInfoSchema>;

/** The body of every HTTP error response. */
export const ErrorBodySchema = z.object({ error: ErrorInfoSchema });
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** An error carrying a protocol code; thrown by handlers, rendered by the transports. */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
    this.details = details;
  }
  toInfo(): ErrorInfo {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}
