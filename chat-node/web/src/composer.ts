/** The composer: send with retries under one clientMsgId, attach a file, signal typing. */
import type { FileReply } from "@vibetalk/protocol/client";
import { api, enc } from "./api.js";
import { $, errorText, input } from "./dom.js";
import { emit, send } from "./socket.js";
import { state } from "./state.js";
import { renderMessages } from "./views/messages.js";

const typingState = { sentAt: 0, stop: undefined as ReturnType<typeof setTimeout> | undefined };

function sendTyping(typing: boolean): void {
  if (state.current) send("typing", { channelId: state.current, typing });
}

async function submit(): Promise<void> {
  const body = input("body").value;
  const fileIds = state.attachment ? [state.attachment.id] : [];
  const channelId = state.current;
  if ((!body.trim() && fileIds.length === 0) || !channelId) return;
  const clientMsgId = crypto.randomUUID();
  state.pending.set(clientMsgId, { channelId, body });
  input("body").value = "";
  state.attachment = null;
  $("attachment").textContent = "";
  sendTyping(false);
  renderMessages(true);
  // Retry with the same clientMsgId until the node confirms: the server keeps one copy.
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await emit("message:send", { channelId, clientMsgId, body, fileIds });
    if (r.ok) return;
    if (r.error.code !== "UNAVAILABLE" && r.error.code !== "RATE_LIMITED") {
      $("chat-error").textContent = r.error.message;
      state.pending.delete(clientMsgId);
      renderMessages();
      return;
    }
    await new Promise((res) => setTimeout(res, 500 * (attempt + 1)));
  }
  $("chat-error").textContent = "not sent: the server is unavailable";
}

async function attach(): Promise<void> {
  const picker = input("file");
  const file = picker.files?.[0];
  picker.value = "";
  if (!file || !state.current) return;
  const form = new FormData();
  form.append("file", file, file.name);
  $("attachment").textContent = `uploading ${file.name}…`;
  try {
    const r = await api<FileReply>("POST", `/files?channelId=${enc(state.current)}`, form);
    state.attachment = r.file;
    $("attachment").textContent = `📎 ${r.file.name}`;
  } catch (err) {
    $("attachment").textContent = "";
    $("chat-error").textContent = errorText(err);
  }
}

function onInput(): void {
  const now = Date.now();
  if (now - typingState.sentAt > 3000) {
    typingState.sentAt = now;
    sendTyping(true);
  }
  clearTimeout(typingState.stop);
  typingState.stop = setTimeout(() => {
    typingState.sentAt = 0;
    sendTyping(false);
  }, 4000);
}

export function setUpComposer(): void {
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    void submit();
  });
  $("attach").addEventListener("click", () => input("file").click());
  input("file").addEventListener("change", () => void attach());
  input("body").addEventListener("input", onInput);
}
