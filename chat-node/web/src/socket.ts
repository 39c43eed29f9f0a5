/** The Socket.IO session (docs/protocol.md, "Socket.IO"): connect, the drain behaviour, typed emits. */
import type { Socket } from "socket.io-client";
import type { ClientToServerEvents, FailureReply, ServerToClientEvents } from "@vibetalk/protocol/client";
import { session } from "./state.js";

type Events = ClientToServerEvents;
type Payload<E extends keyof Events> = Parameters<Events[E]>[0];
type Reply<E extends keyof Events> = Parameters<NonNullable<Parameters<Events[E]>[1]>>[0];
export type Handlers = { [E in keyof ServerToClientEvents]?: ServerToClientEvents[E] };

let socket: Socket | null = null;

/**
 * Transports: HTTP long polling first, upgraded to a WebSocket when one gets through (Socket.IO's
 * default), so a proxy or network that refuses WebSockets still chats. `?transport=polling` or
 * `?transport=websocket` in the page's address forces one (for tests and for diagnosing a proxy).
 */
function transports(): string[] {
  const forced = new URLSearchParams(location.search).get("transport");
  if (forced === "polling" || forced === "websocket") return [forced];
  return ["polling", "websocket"];
}

export interface SessionHooks {
  connected(): void;
  disconnected(): void;
  unauthenticated(): void;
}

export function connect(hooks: SessionHooks, handlers: Handlers): void {
  const s = io({ auth: { token: session.token }, transports: transports() });
  socket = s;
  s.on("connect", hooks.connected);
  s.on("disconnect", hooks.disconnected);
  s.on("connect_error", (err: Error & { data?: { code?: string } }) => {
    if (err.data?.code === "UNAUTHENTICATED") hooks.unauthenticated();
    // A draining node refused the handshake (the proxy still sent us there): try again shortly.
    else if (err.data?.code === "UNAVAILABLE") setTimeout(() => s.connect(), 300 + Math.random() * 700);
  });
  // A draining node asks us to go: reconnect (the load balancer picks another node).
  s.on("reconnect", () => {
    s.disconnect();
    setTimeout(() => s.connect(), 200 + Math.random() * 800);
  });
  for (const [event, handler] of Object.entries(handlers)) s.on(event, handler as (...a: unknown[]) => void);
}

export const isConnected = (): boolean => socket?.connected ?? false;

export function disconnect(): void {
  socket?.disconnect();
}

const NO_REPLY: FailureReply = { ok: false, error: { code: "UNAVAILABLE", message: "no reply" } };

/** Emits with an ack; a timeout or a lost connection answers UNAVAILABLE. */
export function emit<E extends keyof Events>(event: E, payload: Payload<E>): Promise<Reply<E>> {
  return new Promise((resolve) => {
    if (!socket) return resolve(NO_REPLY as Reply<E>);
    socket.timeout(10_000).emit(event, payload, (err: Error | null, reply: Reply<E>) => {
      resolve(err ? (NO_REPLY as Reply<E>) : reply);
    });
  });
}

/** Emits without waiting for an ack (typing). */
export function send<E extends keyof Events>(event: E, payload: Payload<E>): void {
  if (socket?.connected) socket.emit(event, payload);
}
