/**
 * User search as you type (GET /users?query=): a combobox over a listbox of matches. Arrow keys move,
 * Enter or a click picks, Escape closes. Serves "start a chat" and a group's "add member".
 */
import type { UsersReply } from "@vibetalk/protocol/client";
import { api, enc } from "./api.js";
import { $, el, input } from "./dom.js";
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

/** Wires the combobox `inputId` to the listbox `listId`; `pick` gets the chosen user. */
export function userPicker(inputId: string, listId: string, pick: (u: UserRef) => void): void {
  const box = input(inputId);
  const list = $(listId);
  let users: UserRef[] = [];
  let active = -1;
  let asked = 0;
  box.setAttribute("role", "combobox");
  box.setAttribute("aria-autocomplete", "list");
  box.setAttribute("aria-controls", listId);
  box.setAttribute("aria-expanded", "false");
  list.setAttribute("role", "listbox");

  const close = (): void => {
    list.hidden = true;
    box.setAttribute("aria-expanded", "false");
    box.removeAttribute("aria-activedescendant");
    active = -1;
  };
  const choose = (u: UserRef): void => {
    close();
    box.value = u.username;
    pick(u);
  };
  const render = (): void => {
    list.replaceChildren(
      ...users.map((u, i) => {
        const li = el("li", i === active ? "active" : "", "", {
          role: "option",
          id: `${listId}-${i}`,
          "aria-selected": String(i === active),
        });
        li.append(el("span", "name", u.displayName), el("span", "handle", `@${u.username}`));
        // mousedown, not click: the input's blur would close the list first.
        li.addEventListener("mousedown", (e) => {
          e.preventDefault();
          choose(u);
        });
        return li;
      }),
    );
    list.hidden = users.length === 0;
    box.setAttribute("aria-expanded", String(!list.hidden));
    if (active >= 0) box.setAttribute("aria-activedescendant", `${listId}-${active}`);
  };

  box.addEventListener("input", async () => {
    const q = box.value.trim().toLowerCase();
    const n = ++asked;
    if (!q) return close();
    try {
      const found = await searchUsers(q, 8);
      if (n !== asked) return; // a later keystroke's answer wins
      users = found;
      active = -1;
      render();
    } catch {
      close(); // suggestions are optional: the form still works by exact username
    }
  });
  box.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !list.hidden) {
      e.preventDefault();
      e.stopPropagation();
      close();
    } else if ((e.key === "ArrowDown" || e.key === "ArrowUp") && users.length > 0) {
      e.preventDefault();
      const step = e.key === "ArrowDown" ? 1 : -1;
      active = (active + step + users.length) % users.length;
      render();
    } else if (e.key === "Enter" && !list.hidden && active >= 0) {
      e.preventDefault();
      const u = users[active];
      if (u) choose(u);
    }
  });
  box.addEventListener("blur", close);
}
