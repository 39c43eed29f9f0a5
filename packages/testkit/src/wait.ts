import { setTimeout as sleep } from "node:timers/promises";

/**
 * Polls `probe` until it returns a value other than undefined or false, and returns it. On timeout it throws
 * naming `what`, the last error or value seen, and whatever `detail()` adds (a status dump, a log tail).
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
  intervalMs = 200,
  detail: () => Promise<string> = async () => "",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      last = err instanceof Error ? err.message : err;
    }
    if (Date.now() > deadline) {
      const extra = await detail().catch(() => "");
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last: ${String(last)}${extra ? `\n${extra}` : ""}`,
      );
    }
    await sleep(intervalMs);
  }
}
