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

function messageOfStatus(body: unknown): string | undefined {
  if (typeof body === "object" && body !== null && "message" in body) {
    const m = (body as { message: unknown }).message;
    if (typeof m === "string") return m;
  }
  return undefined;
}

/** Typed clients wrap the Status JSON in text: `HTTP-Code: …\nBody: "<json string>"\nHeaders: …`. */
function messageOfText(text: string): string {
  const at = text.indexOf("Body: ");
  let json = at >= 0 ? text.slice(at + 6) : text;
  const headers = json.indexOf("\nHeaders:");
  if (headers >= 0) json = json.slice(0, headers);
  try {
    let v: unknown = JSON.parse(json);
    if (typeof v === "string") v = JSON.parse(v);
    return messageOfStatus(v) ?? text.slice(0, 500);
  } catch {
    return text.slice(0, 500);
  }
}

/** The API server's own message (Status.message) when there is one; else the error's message. */
export function errorMessage(err: unknown): string {
  if (typeof err === "object" && err !== null && "body" in err) {
    const body = (err as { body: unknown }).body;
    const m = typeof body === "string" ? messageOfText(body) : messageOfStatus(body);
    if (m) return m;
  }
  return err instanceof Error ? err.message : String(err);
}
