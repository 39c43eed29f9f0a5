/** The open chat's messages: the folded events (fold.ts), then this client's unconfirmed sends. */
import { SERVICE_SENDER_ID } from "@vibetalk/protocol/client";
import type { FileInfo, FoldedMessage, Message, Quote } from "@vibetalk/protocol/client";
import {
  deleteMessage,
  editMessage,
  mayDelete,
  REACTIONS,
  startReply,
  toggleReaction,
  ui,
} from "../actions.js";
import { api, download, enc } from "../api.js";
import { $, clock, el } from "../dom.js";
import { withDays } from "../dates.js";
import { foldMessages } from "../fold.js";
import { me, nameOf, state, store } from "../state.js";

export function renderMessages(scroll = false): void {
  const ol = $("messages");
  const nearBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 80;
  const focus = focusKey(ol);
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
  if (focus) (ol.querySelector(focus) as HTMLElement | null)?.focus();
}

/** The list is redrawn whole: a control focused in it (a menu item, the edit box) keeps the focus. */
function focusKey(ol: HTMLElement): string | null {
  const f = document.activeElement;
  const seq = f && ol.contains(f) ? f.closest<HTMLElement>("[data-seq]")?.dataset["seq"] : undefined;
  const label = f?.getAttribute("aria-label");
  return seq && label ? `[data-seq="${seq}"] [aria-label="${CSS.escape(label)}"]` : null;
}

/** ✓ stored, ✓✓ delivered to every other member, blue ✓✓ read by all. */
function ticks(msg: Message): { text: string; read: boolean } {
  const others = [...(state.members.get(msg.channelId)?.values() ?? [])].filter((m) => m.userId !== me().id);
  if (others.length === 0) return { text: "✓", read: false };
  if (others.every((m) => m.lastReadSeq >= msg.seq)) return { text: "✓✓", read: true };
  if (others.every((m) => m.lastDeliveredSeq >= msg.seq)) return { text: "✓✓", read: false };
  return { text: "✓", read: false };
}

/**
 * A large channel's counts for my message: the highest of the counts for it or any later seq (later
 * counts hold for earlier messages: docs/protocol.md, "Large channels"); null when none has come.
 */
function counts(msg: Message): { delivered: number; read: number } | null {
  let delivered = -1;
  let read = -1;
  for (const [seq, c] of state.receiptCounts.get(msg.channelId) ?? []) {
    if (seq < msg.seq) continue;
    delivered = Math.max(delivered, c.delivered);
    read = Math.max(read, c.read);
  }
  return delivered < 0 ? null : { delivered, read };
}

/** The service posts in the official group under the group's name. */
function senderName(msg: Message): string {
  if (msg.senderId === SERVICE_SENDER_ID) return state.channels.get(msg.channelId)?.name ?? "VibeTalk";
  return nameOf(msg.senderId);
}

function renderMessage(msg: FoldedMessage, group: boolean): HTMLLIElement {
  const mine = msg.senderId === me().id;
  const li = el("li", "msg" + (mine ? " mine" : ""));
  li.dataset["seq"] = String(msg.seq);
  if (group && !mine) li.append(el("div", "sender", senderName(msg)));
  if (msg.deleted) {
    li.classList.add("deleted");
    li.append(el("span", "tombstone", "message deleted"));
    li.append(el("div", "meta", clock(msg.createdAt)));
    return li;
  }
  if (msg.quote) li.append(renderQuote(msg.quote));
  const body = msg.edited?.body ?? msg.body;
  if (ui.editing === msg.seq) li.append(editor(msg, body));
  else if (body) li.append(withMentions(body));
  for (const fileId of msg.fileIds) li.append(renderFile(fileId));
  if (msg.reactions.length > 0) li.append(renderReactions(msg));
  const meta = el("div", "meta", clock(msg.createdAt));
  if (msg.edited) meta.prepend(el("span", "edited", "(edited) "));
  const c = mine ? counts(msg) : null;
  if (c) {
    const label = `Delivered to ${c.delivered} · Read by ${c.read}`;
    const text = ` ✓✓ ${c.delivered} · ${c.read} read`;
    meta.append(
      el("span", "ticks counts" + (c.read > 0 ? " read" : ""), text, { "aria-label": label, title: label }),
    );
  } else if (mine) {
    const t = ticks(msg);
    meta.append(el("span", "ticks" + (t.read ? " read" : ""), " " + t.text));
  }
  li.append(meta);
  if (msg.senderId !== SERVICE_SENDER_ID) li.append(...menu(msg));
  return li;
}

function renderQuote(q: Quote): HTMLElement {
  const text = q.deleted ? "message deleted" : q.body || (q.hasFiles ? "📎 file" : "");
  const div = el("div", "quote");
  div.append(el("span", "quote-sender", nameOf(q.senderId)), el("span", "quote-body", text));
  return div;
}

const MENTION = /(^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]{3,32})/g;

/** The body with its `@username` tokens marked; those naming me marked more. */
export function withMentions(body: string): DocumentFragment {
  const out = document.createDocumentFragment();
  let at = 0;
  for (const m of body.matchAll(MENTION)) {
    const start = (m.index ?? 0) + (m[1]?.length ?? 0);
    out.append(body.slice(at, start));
    const name = m[2] ?? "";
    out.append(el("span", name.toLowerCase() === me().username ? "mention me" : "mention", `@${name}`));
    at = start + name.length + 1;
  }
  out.append(body.slice(at));
  return out;
}

function renderReactions(msg: FoldedMessage): HTMLElement {
  const bar = el("div", "reactions");
  for (const r of msg.reactions) {
    const mine = r.userIds.includes(me().id);
    const b = el("button", "reaction" + (mine ? " mine" : ""), `${r.emoji} ${r.userIds.length}`, {
      type: "button",
      title: r.userIds.map(nameOf).join(", "),
      "aria-label": `${r.emoji} ${r.userIds.length}: ${r.userIds.map(nameOf).join(", ")}`,
      "aria-pressed": String(mine),
    });
    b.addEventListener("click", () => void toggleReaction(msg, r.emoji));
    bar.append(b);
  }
  return bar;
}

function editor(msg: FoldedMessage, body: string): HTMLInputElement {
  const box = el("input", "edit-box", "", { "aria-label": "edit message", maxlength: "4096" });
  // The list is redrawn as events arrive: what is typed so far survives it.
  box.value = ui.draft ?? body;
  box.addEventListener("input", () => (ui.draft = box.value));
  box.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      const text = box.value;
      ui.editing = ui.draft = null;
      renderMessages();
      if (text.trim() && text !== body) void editMessage(msg, text);
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      ui.editing = ui.draft = null;
      renderMessages();
    }
  });
  setTimeout(() => {
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }, 0);
  return box;
}

/** The actions button and, when open, its menu: Reply, Edit, Delete, the reaction bar. */
function menu(msg: FoldedMessage): HTMLElement[] {
  const open = ui.menu === msg.seq;
  const button = el("button", "link menu-button", "⋯", {
    type: "button",
    "aria-label": "message actions",
    "aria-haspopup": "menu",
    "aria-expanded": String(open),
  });
  button.addEventListener("click", () => {
    ui.menu = open ? null : msg.seq;
    renderMessages();
    if (!open) ($("messages").querySelector(".msg-menu button") as HTMLElement | null)?.focus();
  });
  if (!open) return [button];
  const box = el("div", "msg-menu", "", { role: "menu", "aria-label": "message actions" });
  const item = (text: string, label: string, action: () => void, cls = ""): void => {
    const b = el("button", cls, text, { type: "button", role: "menuitem", "aria-label": label });
    b.addEventListener("click", () => {
      ui.menu = null;
      action();
      renderMessages();
    });
    box.append(b);
  };
  for (const emoji of REACTIONS)
    item(emoji, `react ${emoji}`, () => void toggleReaction(msg, emoji), "react");
  item("Reply", "reply", () => startReply(msg));
  if (msg.senderId === me().id) item("Edit", "edit", () => (ui.editing = msg.seq));
  if (mayDelete(msg)) item("Delete", "delete", () => void deleteMessage(msg));
  box.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    e.preventDefault();
    e.stopPropagation();
    ui.menu = null;
    renderMessages();
    ($("messages").querySelector(`[data-seq="${msg.seq}"] .menu-button`) as HTMLElement | null)?.focus();
  });
  return [button, box];
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
