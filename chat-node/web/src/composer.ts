/** The composer: send with retries under one clientMsgId, attach a file, signal typing. */
import type { FileReply } from "@vibetalk/protocol/client";
import { api, enc } from "./api.js";
import { cancelReply } from "./actions.js";
import { $, el, errorText, input } from "./dom.js";
import { emit, send } from "./socket.js";
import { me, state, type UserRef } from "./state.js";
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
  const replyTo = state.replyTo?.seq;
  cancelReply();
  state.pending.set(clientMsgId, { channelId, body });
  input("body").value = "";
  state.attachment = null;
  $("attachment").textContent = "";
  sendTyping(false);
  renderMessages(true);
  // Retry with the same clientMsgId until the node confirms: the server keeps one copy.
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await emit("message:send", {
      channelId,
      clientMsgId,
      body,
      fileIds,
      ...(replyTo !== undefined ? { replyTo } : {}),
    });
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

/** `@` in the composer: the open channel's members whose username starts with what follows it. */
const mention = { users: [] as UserRef[], active: 0 };

function mentionQuery(): string | null {
  const box = input("body");
  const before = box.value.slice(0, box.selectionStart ?? box.value.length);
  return /(?:^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]*)$/.exec(before)?.[1]?.toLowerCase() ?? null;
}

function renderMentions(): void {
  const list = $("mention-list");
  list.setAttribute("role", "listbox");
  list.replaceChildren(
    ...mention.users.map((u, i) => {
      const li = el("li", i === mention.active ? "active" : "", "", {
        role: "option",
        id: `mention-${i}`,
        "aria-selected": String(i === mention.active),
      });
      li.append(el("span", "name", u.displayName), el("span", "handle", `@${u.username}`));
      li.addEventListener("mousedown", (e) => {
        e.preventDefault();
        pickMention(u);
      });
      return li;
    }),
  );
  list.hidden = mention.users.length === 0;
}

function updateMentions(): void {
  const q = mentionQuery();
  const members = state.current ? [...(state.members.get(state.current)?.values() ?? [])] : [];
  mention.users =
    q === null
      ? []
      : members
          .filter((m) => m.userId !== me().id && m.username.startsWith(q))
          .slice(0, 8)
          .map((m) => ({ id: m.userId, username: m.username, displayName: m.displayName }));
  mention.active = 0;
  renderMentions();
}

function pickMention(u: UserRef): void {
  const box = input("body");
  const caret = box.selectionStart ?? box.value.length;
  const before = box.value.slice(0, caret).replace(/@[A-Za-z0-9_.-]*$/, `@${u.username} `);
  box.value = before + box.value.slice(caret);
  box.setSelectionRange(before.length, before.length);
  mention.users = [];
  renderMentions();
  box.focus();
}

function onMentionKey(e: KeyboardEvent): void {
  const n = mention.users.length;
  if (n === 0) return;
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    mention.active = (mention.active + (e.key === "ArrowDown" ? 1 : -1) + n) % n;
    renderMentions();
  } else if (e.key === "Enter" || e.key === "Tab") {
    e.preventDefault();
    const u = mention.users[mention.active];
    if (u) pickMention(u);
  } else if (e.key === "Escape") {
    e.preventDefault();
    e.stopPropagation();
    mention.users = [];
    renderMentions();
  }
}

export function setUpComposer(): void {
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    void submit();
  });
  $("attach").addEventListener("click", () => input("file").click());
  input("file").addEventListener("change", () => void attach());
  input("body").addEventListener("input", onInput);
  input("body").addEventListener("input", updateMentions);
  input("body").addEventListener("keydown", onMentionKey);
  $("reply-cancel").addEventListener("click", cancelReply);
}
