/** Day separators for the message list: messages grouped by the local calendar day they were sent. */

/** The local calendar day of an instant, as `YYYY-MM-DD`. */
export function dayKey(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** "Today", "Yesterday", else the date (with the year only when it is not this year's). */
export function dayLabel(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  const key = dayKey(d);
  if (key === dayKey(now)) return "Today";
  const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
  if (key === dayKey(yesterday)) return "Yesterday";
  return d.toLocaleDateString(undefined, {
    weekday: "short",
    day: "numeric",
    month: "long",
    ...(d.getFullYear() === now.getFullYear() ? {} : { year: "numeric" }),
  });
}

export type Dated<T> = { day: string; label: string } | { item: T };

/** The items (in order) with a separator before the first of each day. */
export function withDays<T extends { createdAt: string }>(
  items: readonly T[],
  now: Date = new Date(),
): Dated<T>[] {
  const out: Dated<T>[] = [];
  let last = "";
  for (const item of items) {
    const day = dayKey(new Date(item.createdAt));
    if (day !== last) out.push({ day, label: dayLabel(item.createdAt, now) });
    last = day;
    out.push({ item });
  }
  return out;
}
