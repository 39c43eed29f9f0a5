/** The open chat's header: title, the peer's presence or the member count, who is typing. */
import { $ } from "../dom.js";
import { nameOf, state, titleOf } from "../state.js";

export function renderHeader(): void {
  const c = state.current ? state.channels.get(state.current) : undefined;
  $("chat-title").textContent = c ? titleOf(c) : "Pick a chat";
  let presence = "";
  if (c?.peer) {
    const p = state.presence.get(c.peer.id);
    presence = p?.online
      ? "online"
      : p?.lastSeenAt
        ? `last seen ${new Date(p.lastSeenAt).toLocaleString()}`
        : "offline";
  } else if (c) presence = `${c.memberCount} members`;
  $("chat-presence").textContent = presence;
  const mute = $("mute");
  mute.hidden = !c;
  mute.textContent = c?.muted ? "unmute" : "mute";
  mute.setAttribute("aria-pressed", String(c?.muted ?? false));
  const typers = [...((state.current && state.typing.get(state.current)?.keys()) || [])].map(nameOf);
  $("chat-typing").textContent = typers.length ? `${typers.join(", ")} typing…` : "";
}
