/** Opaque page cursors: base64url of a small JSON tuple. */

export interface ChannelCursor {
  /** lastMessageAt of the last entry of the previous page, ms. */
  at: number;
  id: string;
}

export function encodeChannelCursor(c: ChannelCursor): string {
  return Buffer.from(JSON.stringify([c.at, c.id])).toString("base64url");
}

export function decodeChannelCursor(s: string): ChannelCursor | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(s, "base64url").toString("utf8"));
    if (Array.isArray(v) && v.length === 2 && Number.isFinite(v[0]) && typeof v[1] === "string") {
      return { at: v[0] as number, id: v[1] };
    }
  } catch {
    // fall through
  }
  return null;
}

export function encodeUserCursor(username: string): string {
  return Buffer.from(username).toString("base64url");
}

export function decodeUserCursor(s: string): string | null {
  const v = Buffer.from(s, "base64url").toString("utf8");
  return /^[a-z0-9_.-]{1,32}$/.test(v) ? v : null;
}

/** Sort order of the recent-chats list: newest activity first, ties by id descending. */
export function compareChannelsByActivity(
  a: { lastMessageAt: Date; id: string },
  b: { lastMessageAt: Date; id: string },
): number {
  const d = b.lastMessageAt.getTime() - a.lastMessageAt.getTime();
  if (d !== 0) return d;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** True when a channel comes strictly after the cursor in the list order. */
export function isAfterCursor(c: { lastMessageAt: Date; id: string }, cursor: ChannelCursor): boolean {
  const t = c.lastMessageAt.getTime();
  return t < cursor.at || (t === cursor.at && c.id < cursor.id);
}
