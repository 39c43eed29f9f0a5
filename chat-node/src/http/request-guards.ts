/**
 * What every HTTP request passes before a route sees it: JSON nesting bounded, framework errors turned
 * into protocol errors (docs/protocol.md, "Errors"), and the bearer-token check of the routes that need it.
 */
import { ProtocolError, type ErrorInfo } from "@vibetalk/protocol";
import type { FastifyRequest } from "fastify";
import type { TokenService } from "../services/auth.js";

/** Requests nest JSON at most this deep (docs/protocol.md, "Limits"). */
export const JSON_MAX_DEPTH = 32;

/** Whether a parsed JSON value nests at most `max` arrays/objects deep (iterative: no stack to blow). */
export function withinDepth(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== "object") continue;
    if (depth > max) return false;
    for (const child of Object.values(v as Record<string, unknown>)) stack.push([child, depth + 1]);
  }
  return true;
}

/** Maps framework errors (body parser, multipart) to protocol errors; null for anything else. */
export function frameworkError(err: {
  code?: unknown;
  statusCode?: unknown;
  message?: string;
}): ErrorInfo | null {
  const code = typeof err.code === "string" ? err.code : "";
  if (
    code === "FST_ERR_CTP_BODY_TOO_LARGE" ||
    code === "FST_REQ_FILE_TOO_LARGE" ||
    code === "FST_FILES_LIMIT"
  ) {
    return { code: "PAYLOAD_TOO_LARGE", message: "the request body is too large" };
  }
  // busboy's words for a multipart body that does not parse (no boundary, cut short, bad headers)
  if (
    /^(Multipart: |Unexpected end of (form|file|multipart data)|Malformed part header|Part terminated early|\w+ terminated early due to unexpected end)/.test(
      err.message ?? "",
    )
  ) {
    return { code: "INVALID_ARGUMENT", message: `malformed multipart/form-data body: ${err.message}` };
  }
  const status = typeof err.statusCode === "number" ? err.statusCode : 0;
  if (status === 413) return { code: "PAYLOAD_TOO_LARGE", message: "the request body is too large" };
  if (status >= 400 && status < 500)
    return { code: "INVALID_ARGUMENT", message: err.message ?? "bad request" };
  return null;
}

/** A preHandler: `Authorization: Bearer <token>` verified, its session on the request. */
export function bearerAuth(tokens: TokenService) {
  return async (req: FastifyRequest): Promise<void> => {
    const h = req.headers.authorization;
    const m = typeof h === "string" ? /^Bearer\s+(\S+)$/i.exec(h) : null;
    if (!m) throw new ProtocolError("UNAUTHENTICATED", "Authorization: Bearer <token> is required");
    req.session = await tokens.verify(m[1]);
    req.userId = req.session.userId;
  };
}
