/**
 * Browser notifications (the Notification API): a button asks for permission while the browser has
 * not been asked; once granted, a message from someone else arriving while the tab is hidden shows one.
 * Clicking it brings the tab back on that chat.
 *
 * Web Push: once permission is granted and the node has a VAPID key, the service worker (/sw.js,
 * chat-node/web/sw) is registered and subscribed, and the subscription is registered as a push device,
 * so that the node can notify this browser when the user has no device online. Any failure there is a
 * console warning: the page works as without it.
 */
import { api } from "./api.js";
import { openChannel } from "./chat.js";
import { $ } from "./dom.js";
import type { WireMessage } from "./fold.js";
import { me, nameOf, session, state, titleOf } from "./state.js";

const supported = (): boolean => "Notification" in window;

export function renderNotifyButton(): void {
  $("notify").hidden = !supported() || Notification.permission !== "default";
}

export function setUpNotifications(): void {
  renderNotifyButton();
  $("notify").addEventListener("click", () => {
    void Notification.requestPermission().then((p) => {
      renderNotifyButton();
      if (p === "granted") void subscribePush();
    });
  });
  // The worker's answer to a click on its notification while this page is open.
  navigator.serviceWorker?.addEventListener("message", (e: MessageEvent<unknown>) => {
    const m = e.data as { type?: unknown; channelId?: unknown } | null;
    if (m?.type === "open-channel" && typeof m.channelId === "string" && session.me) {
      openChannel(m.channelId).catch((err: unknown) => console.warn("opening the chat failed:", err));
    }
  });
}

/** At start, once logged in: subscribes when permission was granted before. */
export function startPush(): void {
  if (supported() && Notification.permission === "granted") void subscribePush();
}

/** base64url (the VAPID public key) to bytes, for `applicationServerKey`. */
export function base64UrlBytes(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(
    s
      .replace(/-/g, "+")
      .replace(/_/g, "/")
      .padEnd(Math.ceil(s.length / 4) * 4, "="),
  );
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function sameBytes(a: ArrayBuffer | null, b: Uint8Array): boolean {
  if (!a || a.byteLength !== b.length) return false;
  const x = new Uint8Array(a);
  return x.every((v, i) => v === b[i]);
}

/** Where this browser keeps the push device it registered for the user logged in. */
const deviceKey = (): string => `vt.push.${session.me?.id ?? ""}`;

/** The device this browser registered for a user: `{endpoint, id}` in localStorage. */
function storedDevice(key: string): { endpoint: string; id?: string } | null {
  const v = localStorage.getItem(key);
  if (!v) return null;
  try {
    return JSON.parse(v) as { endpoint: string; id?: string };
  } catch {
    return { endpoint: v };
  }
}

/**
 * On logout: this browser's push device is removed (so a shared browser does not go on getting the
 * last user's notifications) and the subscription ended; with the session already gone the server
 * removes the device at the push service's 410 instead.
 */
export async function stopPush(): Promise<void> {
  if (!session.me) return;
  const key = deviceKey();
  const device = storedDevice(key);
  if (!device) return;
  localStorage.removeItem(key);
  try {
    if (device.id) await api("DELETE", `/push/devices/${device.id}`);
  } catch (err) {
    console.warn("web push: device not removed:", err instanceof Error ? err.message : err);
  }
  try {
    const reg = await navigator.serviceWorker?.getRegistration("/");
    await (await reg?.pushManager.getSubscription())?.unsubscribe();
  } catch {
    // nothing more to do: the endpoint lapses at the push service
  }
}

async function subscribePush(): Promise<void> {
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !session.me) return;
  const stored = deviceKey();
  try {
    const { publicKey } = await api<{ publicKey: string | null }>("GET", "/push/vapid");
    if (!publicKey) return;
    const key = base64UrlBytes(publicKey);
    await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    const reg = await navigator.serviceWorker.ready;
    let sub = await reg.pushManager.getSubscription();
    // A subscription made under another VAPID key (the node's key changed) cannot be reused.
    if (sub && !sameBytes(sub.options.applicationServerKey, key)) {
      await sub.unsubscribe();
      sub = null;
    }
    sub ??= await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    if (storedDevice(stored)?.endpoint === sub.endpoint) return;
    const keys = { p256dh: sub.toJSON().keys?.["p256dh"], auth: sub.toJSON().keys?.["auth"] };
    const r = await api<{ device: { id: string } }>("POST", "/push/devices", {
      kind: "webpush",
      subscription: { endpoint: sub.endpoint, keys },
    });
    localStorage.setItem(stored, JSON.stringify({ endpoint: sub.endpoint, id: r.device.id }));
  } catch (err) {
    console.warn("web push: not subscribed:", err instanceof Error ? `${err.name}: ${err.message}` : err);
  }
}

export function notifyMessage(msg: WireMessage): void {
  if (!supported() || Notification.permission !== "granted") return;
  if (document.visibilityState !== "hidden" || msg.senderId === me().id) return;
  const c = state.channels.get(msg.channelId);
  const sender = nameOf(msg.senderId);
  const title = c && c.type !== "direct" ? `${sender} in ${titleOf(c)}` : sender;
  const n = new Notification(title, {
    body: msg.body || (msg.fileIds.length > 0 ? "📎 file" : ""),
    tag: msg.channelId,
  });
  n.addEventListener("click", () => {
    window.focus();
    void openChannel(msg.channelId);
    n.close();
  });
}
