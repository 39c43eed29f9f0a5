import { randomBytes } from "node:crypto";
import { trace } from "@opentelemetry/api";
import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

/**
 * What is never written: credentials in request bodies (login, register, password change), session
 * tokens in replies and handshakes, Authorization and Cookie headers, Set-Cookie. pino's `redact`
 * replaces them with "[redacted]" wherever a logged object carries them at these paths.
 */
export const REDACT_PATHS = [
  "password",
  "newPassword",
  "currentPassword",
  "token",
  "auth",
  "authorization",
  "cookie",
  "*.password",
  "*.newPassword",
  "*.currentPassword",
  "*.token",
  "*.auth",
  "*.authorization",
  "*.cookie",
  "*.headers.authorization",
  "*.headers.cookie",
  'headers["set-cookie"]',
  '*.headers["set-cookie"]',
  "req.headers.authorization",
  "req.headers.cookie",
  "res.headers['set-cookie']",
  "body.password",
  "body.newPassword",
  "body.currentPassword",
  "handshake.auth",
  "handshake.headers.authorization",
  "handshake.headers.cookie",
];

/** A W3C trace id (32 hex) for a line outside any traced request or event. */
export function newTraceId(): string {
  return randomBytes(16).toString("hex");
}

/** The trace id of a `traceparent` header (W3C), if well-formed and not all zeros. */
export function traceIdOf(traceparent: unknown): string | undefined {
  if (typeof traceparent !== "string") return undefined;
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent.trim());
  return m && !/^0+$/.test(m[1] as string) ? m[1] : undefined;
}

/**
 * Structured JSON logs on stdout, one line per event: `level` (a name, not pino's number), `time`
 * (ISO 8601), `node`, `pod` (POD_NAME, else null), `msg`; request lines add `reqId` and `traceId`,
 * socket lines `socketId` and `traceId` (docs/chat-node.md, "Logs"). A line with no request or
 * socket gets the active OpenTelemetry span's trace id, else `traceId: null`.
 */
export function createLogger(
  level: string,
  nodeId: string,
  pod?: string,
  destination?: DestinationStream,
): Logger {
  const options = {
    level,
    base: { node: nodeId, pod: pod ?? null },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    mixin: (mergeObject: object, _level: number, logger: Logger) => {
      if ("traceId" in mergeObject || "traceId" in logger.bindings()) return {};
      const span = trace.getActiveSpan();
      const id = span?.spanContext().traceId;
      return { traceId: id && !/^0+$/.test(id) ? id : null };
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
