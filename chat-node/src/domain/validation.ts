import { ProtocolError } from "@vibetalk/protocol";
import type { z } from "zod";

export interface IssueSummary {
  path: string;
  message: string;
}

/** Parses `input` with `schema` or throws the protocol error for it. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issues = r.error.issues;
  const tooLarge = issues.some(
    (i) => i.code === "custom" && (i as { params?: { code?: string } }).params?.code === "PAYLOAD_TOO_LARGE",
  );
  const details: IssueSummary[] = issues
    .slice(0, 10)
    .map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
  const first = details[0];
  const text = first ? `${first.path || "payload"}: ${first.message}` : "invalid payload";
  throw new ProtocolError(tooLarge ? "PAYLOAD_TOO_LARGE" : "INVALID_ARGUMENT", text, details);
}
