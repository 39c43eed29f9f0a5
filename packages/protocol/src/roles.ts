/**
 * Who may change a group, by role (docs/protocol.md, "Roles"): the rules the chat-node enforces,
 * as pure functions, so a client shows only the controls its user may use. Zod-free (client.ts).
 * The chat-node's ChatService checks the same rules itself (docs/decisions.md, 54).
 */
import type { Role } from "./types.js";

/** Rename the group and add members: the owner and admins. */
export const mayManage = (role: Role): boolean => role === "owner" || role === "admin";

/** Make or unmake an admin: the owner, of anyone but themself. */
export const mayChangeRole = (actor: Role, target: Role): boolean => actor === "owner" && target !== "owner";

/** Remove someone else: the owner anyone; an admin members only. Anyone may remove themself (leave). */
export const mayRemove = (actor: Role, target: Role): boolean =>
  actor === "owner" || (actor === "admin" && target === "member");
