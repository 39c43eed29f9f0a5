import { ProtocolError, type ErrorInfo } from "@vibetalk/protocol";
import { DependencyUnavailableError } from "../ports.js";

/**
 * Any thrown value → the protocol error a client gets, for both transports (the HTTP API and the
 * Socket.IO gateway): a ProtocolError as it is, a DependencyUnavailableError (any port's server
 * down) as UNAVAILABLE, anything else as INTERNAL (`internal`: log it, it is a bug).
 */
export function toErrorInfo(err: unknown): { info: ErrorInfo; internal: boolean } {
  if (err instanceof ProtocolError) return { info: err.toInfo(), internal: false };
  if (err instanceof DependencyUnavailableError) {
    const message = `the ${err.dependency === "broker" ? "message broker" : err.dependency} is unavailable; retry`;
    return { info: { code: "UNAVAILABLE", message }, internal: false };
  }
  return { info: { code: "INTERNAL", message: "internal error" }, internal: true };
}
