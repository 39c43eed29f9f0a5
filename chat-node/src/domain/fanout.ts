import { RABBITMQ } from "@vibetalk/protocol/cluster";
import { userExchangeOf } from "./hashing.js";

/** RabbitMQ names, shared with the operator (`@vibetalk/protocol/cluster`). */
export const topology = RABBITMQ;

/** The binding that makes a node receive a user's events. */
export function userBinding(userId: string, userExchanges: number): { exchange: string; routingKey: string } {
  return { exchange: topology.userExchange(userExchangeOf(userId, userExchanges)), routingKey: userId };
}

export interface FanOutPublish {
  routingKey: string;
  /** Further routing keys (RabbitMQ's `CC` header). */
  cc: string[];
}

/**
 * Plans the publishes that carry one event to its recipients: recipients deduplicated and sorted,
 * `maxPerPublish` routing keys per publish. A publish goes to the users router, which hands it to
 * every user exchange; RabbitMQ routes each routing key through the exchange its user hashes to and
 * delivers the message once per node queue that holds any recipient. Normally one publish per
 * event; a huge group takes a few.
 */
export function planFanOut(recipients: Iterable<string>, maxPerPublish: number): FanOutPublish[] {
  const all = [...new Set(recipients)].sort();
  const out: FanOutPublish[] = [];
  for (let i = 0; i < all.length; i += maxPerPublish) {
    const chunk = all.slice(i, i + maxPerPublish);
    const [first, ...rest] = chunk;
    if (first !== undefined) out.push({ routingKey: first, cc: rest });
  }
  return out;
}

/** Recipients of a delivered fan-out message: its routing key plus its `CC` header. */
export function recipientsOf(routingKey: string, ccHeader: unknown): string[] {
  const cc = Array.isArray(ccHeader) ? ccHeader.filter((x): x is string => typeof x === "string") : [];
  return [routingKey, ...cc];
}

/**
 * A large channel (docs/chat-node.md, "Large channels"): the official group, or a group marked
 * large when it reached LARGE_CHANNEL_MEMBERS. Its members are never listed per message.
 */
export function isLargeChannel(c: { type: string; largeSince?: Date | null }): boolean {
  return c.type === "official" || !!c.largeSince;
}

/**
 * How the partition owner fans a channel's event out: `channel` (one publish to the nodes bound to
 * it) once the channel has been large for `switchMs` — time for every node to hear of it and bind
 * the members it holds —, else `members` (routing key + CC per recipient). The official group is
 * large from its creation, so it always goes by channel.
 */
export function fanOutRoute(
  c: { type: string; largeSince?: Date | null },
  now: number,
  switchMs: number,
): "channel" | "members" {
  if (c.type === "official") return "channel";
  if (c.largeSince && now - c.largeSince.getTime() >= switchMs) return "channel";
  return "members";
}
