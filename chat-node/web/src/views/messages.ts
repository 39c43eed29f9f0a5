/** The open chat's messages: the folded events (fold.ts), then this client's unconfirmed sends. */
import { SERVICE_SENDER_ID, type FileInfo, type Message } from "@vibetalk/protocol/client";
import { api, download, enc } from "../api.js";
import { $, clock, el } from "../dom.js";
import { withDays } from "../dates.js";
import { foldMessages } from "../fold.js";
import { me, nameOf, state, store } from "../state.js";

export function renderMessages(scroll = false): void {
  const ol = $("messages");
  const nearBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 80;
  ol.replaceChildren();
  const id = state.current;
  if (!id) return;
  const group = state.channels.get(id)?.type !== "direct";
  for (const entry of withDays(foldMessages(store(id).values(), state.covered.get(id)))) {
    ol.append(
      "item" in entry
        ? renderMessage(entry.item, group)
        : el("li", "day", entry.label, { role: "separator", "data-day": entry.day }),
    );
  }
  for (const [clientMsgId, p] of state.pending) {
    if (p.channelId !== id) continue;
    const li = el("li", "msg mine pending", p.body);
    li.dataset["client"] = clientMsgId;
    ol.append(li);
  }
  if (scroll || nearBottom) ol.scrollTop = ol.scrollHeight;
}

/** ✓ stored, ✓✓ delivered to every other member, blue ✓✓ read by all. */
function ticks(msg: Message): { text: string; read: boolean } {
  const others = [...(state.members.get(msg.channelId)?.values() ?? [])].filter((m) => m.userId !== me().id);
  if (others.length === 0) return { text: "✓", read: false };
  if (others.every((m) => m.lastReadSeq >= msg.seq)) return { text: "✓✓", read: true };
  if (others.every((m) => m.lastDeliveredSeq >= msg.seq)) return { text: "✓✓", read: false };
  return { text: "✓", read: false };
}

/** The service posts in the official group under the group's name. */
function senderName(msg: Message): string {
  if (msg.senderId === SERVICE_SENDER_ID) return state.channels.get(msg.channelId)?.name ?? "VibeTalk";
  return nameOf(msg.senderId);
}

function renderMessage(msg: Message, group: boolean): HTMLLIElement {
  const mine = msg.senderId === me().id;
  const li = el("li", "msg" + (mine ? " mine" : ""));
  if (group && !mine) li.append(el("div", "sender", senderName(msg)));
  if (msg.body) li.append(document.createTextNode(msg.body));
  for (const fileId of msg.fileIds) li.append(renderFile(fileId));
  const meta = el("div", "meta", clock(msg.createdAt));
  if (mine) {
    const t = ticks(msg);
    meta.append(el("span", "ticks" + (t.read ? " read" : ""), " " + t.text));
  }
  li.append(meta);
  return li;
}

const fileCache = new Map<string, Promise<{ info: FileInfo; url: string }>>();

function fetchFile(id: string): Promise<{ info: FileInfo; url: string }> {
  let f = fileCache.get(id);
  if (!f) {
    f = (async () => {
      const { file } = await api<{ file: FileInfo }>("GET", `/files/${enc(id)}/meta`);
      const blob = await download(`/files/${enc(id)}`);
      return { info: file, url: URL.createObjectURL(blob) };
    })();
    fileCache.set(id, f);
  }
  return f;
}

function renderFile(id: string): HTMLDivElement {
  const holder = el("div", "", "📎 …");
  fetchFile(id).then(
    ({ info, url }) => {
      holder.replaceChildren();
      if (info.contentType.startsWith("image/")) {
        const img = el("img");
        img.src = url;
        img.alt = info.name;
        holder.append(img);
      }
      const a = el("a", "", `📎 ${info.name} (${Math.ceil(info.size / 1024)} KiB)`);
      a.href = url;
      a.download = info.name;
      holder.append(a);
    },
    () => (holder.textContent = "📎 file unavailable"),
  );
  return holder;
}
