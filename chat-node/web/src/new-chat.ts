/** Starting chats: a direct chat with a user, a group with several. */
import type { ChannelReply, UsersReply } from "@vibetalk/protocol/client";
import { api, enc } from "./api.js";
import { loadChannels, openChannel, subscribePresence } from "./chat.js";
import { $, el, errorText, input } from "./dom.js";
import type { UserRef } from "./state.js";

export async function searchUsers(query: string, limit: number): Promise<UserRef[]> {
  const r = await api<UsersReply>("GET", `/users?query=${enc(query)}&limit=${limit}`);
  return r.users;
}

export async function userByName(username: string): Promise<UserRef> {
  const u = (await searchUsers(username, 1)).find((x) => x.username === username);
  if (!u) throw new Error(`no user ${username}`);
  return u;
}

async function suggest(): Promise<void> {
  const q = input("new-chat-user").value.trim().toLowerCase();
  if (q.length < 1) return;
  try {
    const users = await searchUsers(q, 8);
    $("user-suggestions").replaceChildren(
      ...users.map((u) => {
        const o = el("option");
        o.value = u.username;
        o.label = u.displayName;
        return o;
      }),
    );
  } catch {
    /* suggestions are optional: the form still works by exact username */
  }
}

async function startDirect(): Promise<void> {
  const u = await userByName(input("new-chat-user").value.trim().toLowerCase());
  const { channel } = await api<ChannelReply>("POST", "/channels", { type: "direct", userId: u.id });
  input("new-chat-user").value = "";
  await loadChannels(true);
  subscribePresence();
  await openChannel(channel.id);
}

async function startGroup(): Promise<void> {
  const names = input("new-group-members")
    .value.split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const users = await Promise.all(names.map(userByName));
  const { channel } = await api<ChannelReply>("POST", "/channels", {
    type: "group",
    name: input("new-group-name").value.trim(),
    memberIds: users.map((u) => u.id),
  });
  input("new-group-name").value = "";
  input("new-group-members").value = "";
  await loadChannels(true);
  await openChannel(channel.id);
}

/** A form's submit runs `action`; its failure shows under the chat. */
export function onSubmit(formId: string, action: () => Promise<void>): void {
  $(formId).addEventListener("submit", (e) => {
    e.preventDefault();
    action().catch((err: unknown) => ($("chat-error").textContent = errorText(err)));
  });
}

export function setUpNewChat(): void {
  input("new-chat-user").addEventListener("input", () => void suggest());
  onSubmit("new-chat", startDirect);
  onSubmit("new-group", startGroup);
}
