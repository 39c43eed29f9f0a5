import { ReplyError } from "ioredis";
import { DependencyUnavailableError } from "../ports.js";

/** Redis unreachable (connection closed, retries per request used up, a timeout). */
export class RedisUnavailableError extends DependencyUnavailableError {
  constructor(cause: unknown) {
    super("redis", `Redis is unavailable: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = "RedisUnavailableError";
  }
}

/**
 * Runs a Redis call and states its failure as the ports do: an error reply from the server
 * (WRONGTYPE, a script error) is a bug and stays as it is; anything else ioredis rejects with means
 * the server could not answer, RedisUnavailableError.
 */
export async function redisCall<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof ReplyError || err instanceof DependencyUnavailableError) throw err;
    throw new RedisUnavailableError(err);
  }
}
