/** Reading errors from @kubernetes/client-node (pure). */

/** HTTP status of an API error, or undefined for anything else. */
export function statusCode(err: unknown): number | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === "number") return code;
  }
  return undefined;
}

export const isNotFound = (err: unknown): boolean => statusCode(err) === 404;
export const isConflict = (err: unknown): boolean => statusCode(err) === 409;

function messageFromBody(body: unknown): string | undefined {
  if (typeof body === "object" && body !== null && "message" in body) {
    const m = (body as { message: unknown }).message;
    if (typeof m === "string") return m;
  }
  if (typeof body === "string") {
    const json = body.indexOf("{");
    if (json >= 0) {
      try {
        return messageFromBody(JSON.parse(body.slice(json, body.lastIndexOf("}") + 1)));
      } catch {
        return body.slice(0, 500);
      }
    }
    return body.slice(0, 500);
  }
  return undefined;
}

/** The API server's own message (Status.message) when there is one; else the error's message. */
export function errorMessage(err: unknown): string {
  if (typeof err === "object" && err !== null && "body" in err) {
    const m = messageFromBody((err as { body: unknown }).body);
    if (m) return m;
  }
  return err instanceof Error ? err.message : String(err);
}
