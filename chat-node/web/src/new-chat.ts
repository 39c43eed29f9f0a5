/** Starting chats: a direct chat with a user found by search, a group with several. */
import type { ChannelReply } from "@vibetalk/protocol/client";
import { api } from "./api.js";
import { loadChannels, openChannel, subscribePresence } from "./chat.js";
import { $, errorText, input } from "./dom.js";
import type { UserRef } from "./state.js";
import { userByName, userPicker } from "./user-search.js";

async function startDirect(user?: UserRef): Promise<void> {
  const u = user ?? (await userByName(input("new-chat-user").value.trim().toLowerCase()));
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

const showError = (err: unknown): void => {
  $("chat-error").textContent = errorText(err);
};

/** A form's submit runs `action`; its failure shows under the chat. */
function onSubmit(formId: string, action: () => Promise<void>): void {
  $(formId).addEventListener("submit", (e) => {
    e.preventDefault();
    action().catch(showError);
  });
}

export function setUpNewChat(): void {
  userPicker("new-chat-user", "user-results", (u) => void startDirect(u).catch(showError));
  onSubmit("new-chat", () => startDirect());
  onSubmit("new-group", startGroup);
}
