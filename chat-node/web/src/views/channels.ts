/** The chat list: one entry per channel, newest first, with presence, preview, time and unread badge. */
import type { ChannelSummary } from "@vibetalk/protocol/client";
import { openChannel } from "../chat.js";
import { $, clock, el } from "../dom.js";
import { state, titleOf } from "../state.js";

export function renderChannels(): void {
  const sorted = [...state.channels.values()].sort((a, b) => (a.lastMessageAt < b.lastMessageAt ? 1 : -1));
  $("channel-list").replaceChildren(...sorted.map(channelEntry));
}

function channelEntry(c: ChannelSummary): HTMLLIElement {
  const li = el("li");
  if (c.id === state.current) li.classList.add("active");
  const unread = c.id === state.current ? 0 : c.unread;
  const open = el("button", "open", "", {
    type: "button",
    "aria-label": `${titleOf(c)}${unread > 0 ? `, ${unread} unread` : ""}`,
  });
  if (c.id === state.current) open.setAttribute("aria-current", "true");
  const mentions = c.id === state.current ? 0 : c.mentions;
  if (mentions > 0)
    open.setAttribute("aria-label", `${open.getAttribute("aria-label")}, ${mentions} mentions`);
  if (c.muted) open.setAttribute("aria-label", `${open.getAttribute("aria-label")}, muted`);
  const name = el("span", "name");
  if (c.peer) name.append(el("span", "dot" + (state.presence.get(c.peer.id)?.online ? " online" : "")));
  name.append(titleOf(c));
  if (c.muted) name.append(el("span", "muted", "🔕 muted"));
  const time = el("span", "time", c.lastMessage ? clock(c.lastMessage.createdAt) : "");
  const preview = el(
    "span",
    "preview",
    c.lastMessage
      ? c.lastMessage.deleted
        ? "message deleted"
        : c.lastMessage.body || (c.lastMessage.hasFiles ? "📎 file" : "")
      : "no messages yet",
  );
  open.append(name, time, preview);
  if (mentions > 0) open.append(el("span", "badge mentions", `@${mentions}`));
  else if (unread > 0) open.append(el("span", "badge", String(unread)));
  open.addEventListener("click", () => void openChannel(c.id));
  li.append(open);
  return li;
}
