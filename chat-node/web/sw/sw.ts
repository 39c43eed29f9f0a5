/**
 * The service worker (served at /sw.js, scope /; docs/chat-node.md, "The web client"): shows the Web
 * Push messages the chat-node sends for a user with no device online, and a click on one opens that
 * chat. Its own folder and tsconfig: it has the worker's globals (lib WebWorker), not the page's DOM.
 */
// A module (the export below), so that this `self` shadows the lib's WorkerGlobalScope one.
declare const self: ServiceWorkerGlobalScope;

/** What chat-node/src/domain/push.ts `webPushPayload` sends, decrypted by the browser. */
interface Payload {
  channelId: string;
  seq: number;
  senderName: string;
  body: string;
  unread: number;
}

/** The notification when a push cannot be read: a push must show something (userVisibleOnly). */
const GENERIC = "New message";

function parse(data: PushMessageData | null): Payload | null {
  try {
    const p = data?.json() as Partial<Payload> | null | undefined;
    if (!p || typeof p.channelId !== "string" || !p.channelId || typeof p.senderName !== "string") {
      return null;
    }
    return { ...p, body: typeof p.body === "string" ? p.body : "" } as Payload;
  } catch {
    return null;
  }
}

function show(p: Payload | null): Promise<void> {
  if (!p) return self.registration.showNotification(GENERIC, { data: {} });
  return self.registration.showNotification(p.senderName, {
    body: p.body,
    tag: p.channelId,
    data: { channelId: p.channelId },
  });
}

/** Focuses an open window of the app and tells it the chat to open, else opens one on that chat. */
async function openChat(channelId: string | null): Promise<void> {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const win = windows.find((w) => w.focused) ?? windows[0];
  if (win) {
    if (channelId) win.postMessage({ type: "open-channel", channelId });
    await win.focus().catch(() => undefined);
    return;
  }
  await self.clients.openWindow(channelId ? `/?channel=${encodeURIComponent(channelId)}` : "/");
}

self.addEventListener("install", () => void self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));
self.addEventListener("push", (e) => e.waitUntil(show(parse(e.data))));
self.addEventListener("notificationclick", (e) => {
  e.notification.close();
  const id = (e.notification.data as { channelId?: unknown } | null)?.channelId;
  e.waitUntil(openChat(typeof id === "string" ? id : null));
});

export {};
