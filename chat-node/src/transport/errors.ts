import { ProtocolError, type ErrorInfo } from "@vibetalk/protocol";

/** Any thrown value → the protocol error a client gets (infrastructure failures are UNAVAILABLE). */
export function toErrorInfo(err: unknown): { info: ErrorInfo; internal: boolean } {
  if (err instanceof ProtocolError) return { info: err.toInfo(), internal: false };
  const name = (err as { name?: unknown })?.name;
  if (
    typeof name === "string" &&
    /^Mongo|StoreUnavailable|BrokerUnavailable|MaxRetriesPerRequest|IllegalOperation/.test(name)
  ) {
    return { info: { code: "UNAVAILABLE", message: "a dependency is unavailable; retry" }, internal: false };
  }
  return { info: { code: "INTERNAL", message: "internal error" }, internal: true };
}
