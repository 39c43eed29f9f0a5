/** The HTTP API client (docs/protocol.md, "HTTP API"): JSON in and out, the session token as a bearer. */
import { API_PREFIX } from "@vibetalk/protocol/client";
import type { ErrorBody } from "@vibetalk/protocol/client";
import { session } from "./state.js";

/** An HTTP answer other than 2xx, with the protocol's error code when the body had one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

let onUnauthenticated: () => void = () => undefined;

/** What to do when a call other than login answers 401 (the session ended): log out. */
export function onSessionEnded(handler: () => void): void {
  onUnauthenticated = handler;
}

function authHeaders(): Record<string, string> {
  return session.token ? { authorization: `Bearer ${session.token}` } : {};
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers = authHeaders();
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(API_PREFIX + path, { method, headers, body: payload ?? null });
  const data: unknown = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) {
    if (res.status === 401 && path !== "/auth/login") onUnauthenticated();
    const info = (data as Partial<ErrorBody> | null)?.error;
    throw new ApiError(res.status, info?.code, info?.message ?? `HTTP ${res.status}`);
  }
  return data as T;
}

/** A file's bytes (the download route is not JSON). */
export async function download(path: string): Promise<Blob> {
  const res = await fetch(API_PREFIX + path, { headers: authHeaders() });
  if (!res.ok) throw new ApiError(res.status, undefined, `HTTP ${res.status}`);
  return res.blob();
}

export const enc = encodeURIComponent;
