/**
 * Browser notifications (the Notification API): a button asks for permission while the browser has
 * not been asked; once granted, a message from someone else arriving while the tab is hidden shows one.
 * Clicking it brings the tab back on that chat.
 */
import { openChannel } from "./chat.js";
import { $ } from "./dom.js";
import type { WireMessage } from "./fold.js";
import { me, nameOf, state, titleOf } from "./state.js";

const supported = (): boolean => "Notification" in window;

export function renderNotifyButton(): void {
  $("notify").hidden = !supported() || Notification.permission !== "default";
}

export function setUpNotifications(): void {
  renderNotifyButton();
  $("notify").addEventListener("click", () => {
    void Notification.requestPermission().then(renderNotifyButton);
  });
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
