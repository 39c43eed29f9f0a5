/**
 * The VibeTalk web client (docs/chat-node.md, "The web client"): log in or register, then chat over the
 * HTTP API and Socket.IO (docs/protocol.md). Bundled by scripts/bundle-web.mjs into public/app.js.
 */
import type { AuthReply, MeReply } from "@vibetalk/protocol/client";
import { api, onSessionEnded } from "./api.js";
import {
  closeChannel,
  openChannel,
  loadChannels,
  loadOlder,
  onChannelEvent,
  onMessage,
  onReceipt,
  onReceiptCounts,
  onTyping,
  onVisible,
  subscribePresence,
  syncAll,
  toggleMute,
} from "./chat.js";
import { setUpComposer } from "./composer.js";
import { $, errorText, input } from "./dom.js";
import { setUpNewChat } from "./new-chat.js";
import { setUpNotifications, startPush, stopPush } from "./notify.js";
import { connect, disconnect } from "./socket.js";
import { session, state } from "./state.js";
import { renderChannels } from "./views/channels.js";
import { closeGroupPanel, setUpGroupPanel } from "./views/group.js";
import { renderHeader } from "./views/header.js";
import { renderMessages } from "./views/messages.js";

function logout(): void {
  void stopPush().finally(endSession);
}

function endSession(): void {
  localStorage.removeItem("vt.token");
  session.token = null;
  disconnect();
  location.reload();
}

async function login(e: SubmitEvent): Promise<void> {
  e.preventDefault();
  const submitter = e.submitter as HTMLButtonElement | null;
  const mode = submitter?.dataset["mode"] ?? "login";
  const body: Record<string, string> = {
    username: input("auth-username").value.trim(),
    password: input("auth-password").value,
  };
  const display = input("auth-display").value.trim();
  if (mode === "register" && display) body["displayName"] = display;
  try {
    const r = await api<AuthReply>("POST", `/auth/${mode}`, body);
    session.token = r.token;
    localStorage.setItem("vt.token", r.token);
    await start();
  } catch (err) {
    $("auth-error").textContent = errorText(err);
  }
}

function live(): void {
  connect(
    {
      connected: () => {
        $("conn-state").classList.add("on");
        void syncAll();
        subscribePresence();
      },
      disconnected: () => $("conn-state").classList.remove("on"),
      unauthenticated: logout,
    },
    {
      message: onMessage,
      receipt: onReceipt,
      "receipt:counts": onReceiptCounts,
      typing: onTyping,
      presence: (p) => {
        state.presence.set(p.userId, p);
        renderChannels();
        renderHeader();
      },
      channel: onChannelEvent,
      // An acked message the server could not store (parked): it will not appear in the channel.
      "message:failed": (f) => {
        state.pending.delete(f.clientMsgId);
        if (f.channelId === state.current) $("chat-error").textContent = `not delivered: ${f.message}`;
        renderMessages();
      },
    },
  );
}

async function start(): Promise<void> {
  let user: MeReply["user"];
  try {
    ({ user } = await api<MeReply>("GET", "/me"));
  } catch {
    $("auth").hidden = false;
    return;
  }
  session.me = user;
  state.users.set(user.id, user);
  $("auth").hidden = true;
  $("app").hidden = false;
  $("me-name").textContent = user.displayName;
  await loadChannels(true);
  live();
  startPush();
  // `/?channel=<id>`: the service worker opened this page for a notification of that chat.
  const channel = new URLSearchParams(location.search).get("channel");
  if (channel) {
    history.replaceState(null, "", "/");
    openChannel(channel).catch((err: unknown) => console.warn("opening the chat failed:", err));
  }
}

onSessionEnded(logout);
$<HTMLFormElement>("auth-form").addEventListener("submit", (e) => void login(e));
$("logout").addEventListener("click", logout);
$("more-channels").addEventListener("click", () => void loadChannels(false));
$("older").addEventListener("click", () => void loadOlder());
$("back").addEventListener("click", closeChannel);
$("mute").addEventListener("click", () =>
  toggleMute().catch((err: unknown) => ($("chat-error").textContent = errorText(err))),
);
document.addEventListener("visibilitychange", onVisible);
// Escape closes what is open on top: a list of suggestions (user-search.ts), else the group panel.
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") closeGroupPanel();
});
setUpComposer();
setUpNewChat();
setUpGroupPanel();
setUpNotifications();

if (session.token) void start();
else $("auth").hidden = false;
