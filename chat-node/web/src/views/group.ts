/**
 * A group's settings (docs/protocol.md, "Roles"): members and their roles, rename, add, remove, make
 * or unmake admins, leave. Each control is shown only to those the chat-node allows to use it.
 */
import { mayChangeRole, mayManage, mayRemove } from "@vibetalk/protocol/client";
import type { ChannelDetailsReply, ChannelReply, Member, Role } from "@vibetalk/protocol/client";
import { api, enc } from "../api.js";
import { closeChannel, loadMembers, renderAll } from "../chat.js";
import { $, el, errorText, input } from "../dom.js";
import { me, state, type UserRef } from "../state.js";
import { userByName, userPicker } from "../user-search.js";

const RANK: Record<Role, number> = { owner: 0, admin: 1, member: 2 };
let opener: HTMLElement | null = null;

const open = (): boolean => !$("group-panel").hidden;

export function openGroupPanel(): void {
  opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  $("group-panel").hidden = false;
  $("group-error").textContent = "";
  renderGroupPanel();
  $("group-close").focus();
}

export function closeGroupPanel(): void {
  if (!open()) return;
  $("group-panel").hidden = true;
  opener?.focus();
}

function myRole(channelId: string): Role {
  return state.members.get(channelId)?.get(me().id)?.role ?? state.channels.get(channelId)?.role ?? "member";
}

export function renderGroupPanel(): void {
  const c = state.current ? state.channels.get(state.current) : undefined;
  $("group-info").hidden = c?.type !== "group";
  if (!c || c.type !== "group") return closeGroupPanel();
  if (!open()) return;
  const role = myRole(c.id);
  $("group-panel-title").textContent = c.name ?? "group";
  $("group-rename").hidden = !mayManage(role);
  $("group-add").hidden = !mayManage(role);
  const members = [...(state.members.get(c.id)?.values() ?? [])].sort(
    (a, b) => RANK[a.role] - RANK[b.role] || a.displayName.localeCompare(b.displayName),
  );
  $("group-members").replaceChildren(...members.map((m) => memberEntry(c.id, role, m)));
}

function memberEntry(channelId: string, role: Role, m: Member): HTMLLIElement {
  const self = m.userId === me().id;
  const li = el("li", "", "", { "data-user": m.username });
  li.append(el("span", "name", m.displayName + (self ? " (you)" : "")), el("span", "role", m.role));
  if (!self && mayChangeRole(role, m.role)) {
    const next = m.role === "admin" ? "member" : "admin";
    li.append(
      button(m.role === "admin" ? "unmake admin" : "make admin", `${next} role for ${m.displayName}`, () =>
        api<ChannelDetailsReply>("PATCH", `/channels/${enc(channelId)}/members/${enc(m.userId)}`, {
          role: next,
        }),
      ),
    );
  }
  if (!self && mayRemove(role, m.role)) {
    li.append(
      button("remove", `remove ${m.displayName}`, () =>
        api("DELETE", `/channels/${enc(channelId)}/members/${enc(m.userId)}`),
      ),
    );
  }
  return li;
}

/** A button that runs a membership change, then shows the members as the chat-node now has them. */
function button(text: string, label: string, action: () => Promise<unknown>): HTMLButtonElement {
  const b = el("button", "link", text, { type: "button", "aria-label": label });
  b.addEventListener("click", () => void change(action));
  return b;
}

async function change(action: () => Promise<unknown>): Promise<void> {
  const id = state.current;
  try {
    await action();
    if (id) await loadMembers(id);
    renderAll();
  } catch (err) {
    $("group-error").textContent = errorText(err);
  }
}

async function leave(): Promise<void> {
  const id = state.current;
  if (!id) return;
  try {
    await api("DELETE", `/channels/${enc(id)}/members/${enc(me().id)}`);
    closeGroupPanel();
    state.channels.delete(id);
    closeChannel();
    renderAll();
  } catch (err) {
    $("group-error").textContent = errorText(err);
  }
}

export function setUpGroupPanel(): void {
  $("group-info").addEventListener("click", openGroupPanel);
  $("group-close").addEventListener("click", closeGroupPanel);
  $("group-leave").addEventListener("click", () => void leave());
  $("group-rename").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = state.current;
    if (!id) return;
    void change(async () => {
      const { channel } = await api<ChannelReply>("PATCH", `/channels/${enc(id)}`, {
        name: input("group-name").value.trim(),
      });
      const c = state.channels.get(id);
      if (c) c.name = channel.name;
      input("group-name").value = "";
    });
  });
  const add = (user: () => Promise<UserRef>): void => {
    const id = state.current;
    if (!id) return;
    void change(async () => {
      const u = await user();
      await api<ChannelDetailsReply>("POST", `/channels/${enc(id)}/members`, { userIds: [u.id] });
      input("group-add-user").value = "";
    });
  };
  userPicker("group-add-user", "group-add-results", (u) => add(() => Promise.resolve(u)));
  $("group-add").addEventListener("submit", (e) => {
    e.preventDefault();
    add(() => userByName(input("group-add-user").value.trim().toLowerCase()));
  });
}
