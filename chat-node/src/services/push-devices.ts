/**
 * Push devices (docs/chat-node.md, "Push notifications"): what a client registers, checked beyond its
 * schema against the node's config, and how it is shown back.
 */
import { ProtocolError, type ProtocolSchemas } from "@vibetalk/protocol";
import type { z } from "zod";
import type { PushConfig } from "../config.js";
import type { PushDeviceRecord, PushDeviceStore, PushTarget } from "../ports.js";

/** Hosts that are this machine: http to them is allowed with PUSH_ALLOW_HTTP_LOOPBACK (tests). */
const LOOPBACK_HOSTS = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

/** The target of a registration, or INVALID_ARGUMENT for an endpoint the config refuses. */
export function pushTargetOf(
  body: z.output<ProtocolSchemas["PushDeviceBody"]>,
  config: PushConfig,
): PushTarget {
  if (body.kind === "gateway") return { kind: "gateway", pushKey: body.pushKey, appId: body.appId ?? "" };
  const url = new URL(body.subscription.endpoint);
  const httpAllowed = config.allowHttpLoopback && LOOPBACK_HOSTS.test(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && httpAllowed)) {
    throw new ProtocolError("INVALID_ARGUMENT", "a Web Push endpoint must be an https URL", {
      issues: [{ path: "subscription.endpoint", message: "must be https" }],
    });
  }
  if (url.username !== "" || url.password !== "") {
    throw new ProtocolError("INVALID_ARGUMENT", "a Web Push endpoint carries no credentials");
  }
  const { p256dh, auth } = body.subscription.keys;
  return { kind: "webpush", endpoint: body.subscription.endpoint, p256dh, auth };
}

/** Registers a device for a user: TOO_MANY_DEVICES over the bound (PUSH_MAX_DEVICES). */
export async function registerPushDevice(
  store: PushDeviceStore,
  config: PushConfig,
  userId: string,
  target: PushTarget,
): Promise<{ device: PushDeviceRecord; created: boolean }> {
  const r = await store.addPushDevice(userId, target, config.maxDevices);
  if (!r) {
    throw new ProtocolError(
      "TOO_MANY_DEVICES",
      `a user registers at most ${config.maxDevices} push devices: remove one first`,
    );
  }
  return r;
}

/** A device as the API shows it: never its Web Push keys. */
export function pushDeviceView(d: PushDeviceRecord): Record<string, string> {
  const base = { id: d.id, kind: d.kind, createdAt: d.createdAt.toISOString() };
  return d.kind === "gateway"
    ? { ...base, pushKey: d.pushKey, appId: d.appId }
    : { ...base, endpoint: d.endpoint };
}
