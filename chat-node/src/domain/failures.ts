import { DependencyUnavailableError } from "../ports.js";

/**
 * What a failure to store or fan out a message means for the partition consumer (pure):
 * - `transient`: the store or the broker is unreachable, slow or changing hands; retry the same
 *   deliveries later, in process, without giving them up;
 * - `permanent`: the store refuses this document and always will; park it at once;
 * - `unknown`: anything else; retried a bounded number of times while the store answers pings,
 *   then parked.
 */
export type FailureKind = "transient" | "permanent" | "unknown";

/** Driver, broker and our own errors that say nothing about the document. */
const TRANSIENT_NAMES =
  /^(Mongo(Network|NetworkTimeout|ServerSelection|NotConnected|PoolCleared|TopologyClosed|OperationTimeout|WaitQueueTimeout|Expired)Error|StoreUnavailableError|BrokerUnavailableError|SeqConflictError|MaxRetriesPerRequestError)$/;
/** MongoDB server codes about the server, not the document (shutdown, failover, timeouts). */
const TRANSIENT_CODES = new Set([
  6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 50, 134, 24, 112, 251,
]);
/** MongoDB server codes that refuse a document whatever is retried. */
const PERMANENT_CODES = new Set([2, 14, 22, 52, 55, 57, 121, 10334, 17280, 17419, 16733]);
/**
 * FerretDB on PostgreSQL answers InternalError (code 1) with PostgreSQL's message. SQLSTATE class
 * 22 is "data exception" (22P05: "unsupported Unicode escape sequence", a U+0000 in a string;
 * 22021: bad byte sequence; 22001: value too long): the data, not the server.
 */
const PERMANENT_TEXT = /SQLSTATE 22[0-9A-Z]{3}|unsupported Unicode escape sequence|invalid byte sequence/i;
/**
 * PostgreSQL (through FerretDB) unreachable, restarting, overloaded, or a serialisation conflict:
 * SQLSTATE classes 08, 40, 53, 57, 58, and the network errors FerretDB passes on.
 */
const TRANSIENT_TEXT =
  /SQLSTATE (08|40|53|57|58)[0-9A-Z]{3}|connection refused|connection reset|broken pipe|i\/o timeout|unexpected EOF|the database system is (starting up|shutting down)/i;
/** The BSON serializer refuses before anything is sent (a document over 16 MiB, a bad value). */
const PERMANENT_CLIENT_NAMES = /^(BSONError|BSONVersionError|MongoInvalidArgumentError|RangeError)$/;

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  errorLabels?: unknown;
  errorLabelSet?: unknown;
  cause?: unknown;
}

function labels(e: ErrorShape): string[] {
  if (Array.isArray(e.errorLabels)) return e.errorLabels.filter((l): l is string => typeof l === "string");
  if (e.errorLabelSet instanceof Set) return [...(e.errorLabelSet as Set<unknown>)].map(String);
  return [];
}

function classifyServerError(code: number | undefined, l: string[]): FailureKind {
  if (l.includes("RetryableWriteError") || l.includes("ResetPool") || l.includes("TransientTransactionError"))
    return "transient";
  if (code !== undefined && TRANSIENT_CODES.has(code)) return "transient";
  if (code !== undefined && PERMANENT_CODES.has(code)) return "permanent";
  return "unknown";
}

export function classifyFailure(err: unknown, depth = 0): FailureKind {
  if (err instanceof DependencyUnavailableError) return "transient";
  if (typeof err !== "object" || err === null) return "unknown";
  const e = err as ErrorShape;
  const name = typeof e.name === "string" ? e.name : "";
  const message = typeof e.message === "string" ? e.message : "";
  const code = typeof e.code === "number" ? e.code : undefined;
  if (TRANSIENT_NAMES.test(name) || TRANSIENT_TEXT.test(message)) return "transient";
  if (PERMANENT_TEXT.test(message)) return "permanent";
  const byCode = classifyServerError(code, labels(e));
  if (byCode !== "unknown") return byCode;
  if (PERMANENT_CLIENT_NAMES.test(name)) return "permanent";
  if (e.cause && depth < 3) {
    const inner = classifyFailure(e.cause, depth + 1);
    if (inner !== "unknown") return inner;
  }
  return "unknown";
}

/** One line for logs and the parked message's headers. */
export function describeFailure(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.name}${code !== undefined ? ` ${String(code)}` : ""}: ${err.message}`.slice(0, 1000);
  }
  return String(err).slice(0, 1000);
}

/** Exponential backoff: `base · 2^attempt`, at most `max` ms, with ±20 % jitter. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(raw * (0.8 + 0.4 * random()));
}
