// Push device registration (docs/chat-node.md, "Push notifications"): the endpoint rule and the bound, on the fake store.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ProtocolError, schemas } from "@vibetalk/protocol";
import { loadConfig } from "../../src/config.js";
import { pushDeviceView, pushTargetOf, registerPushDevice } from "../../src/services/push-devices.js";
import { MemoryStore } from "../support/fakes/memory-store.js";

const keys = { p256dh: "B".repeat(87), auth: "A".repeat(22) };
const env = {
  REDIS_URL: "redis://127.0.0.1:6379",
  RABBITMQ_URL: "amqp://guest:guest@127.0.0.1:5672",
  MONGODB_URL: "mongodb://127.0.0.1:27017/vibetalk",
  JWT_SECRET: "0123456789abcdef0123456789abcdef",
};
const config = (extra: Record<string, string> = {}) => loadConfig({ ...env, ...extra }).push;
const webpush = (endpoint: string) =>
  schemas.PushDeviceBody.parse({ kind: "webpush", subscription: { endpoint, keys } });

test("a Web Push endpoint is https, or http to loopback only when PUSH_ALLOW_HTTP_LOOPBACK is set", () => {
  const strict = config();
  const loose = config({ PUSH_ALLOW_HTTP_LOOPBACK: "true" });
  assert.equal(pushTargetOf(webpush("https://push.example/a"), strict).kind, "webpush");
  const refused = (fn: () => unknown) =>
    assert.throws(fn, (e: unknown) => e instanceof ProtocolError && e.code === "INVALID_ARGUMENT");
  refused(() => pushTargetOf(webpush("http://127.0.0.1:9/a"), strict));
  assert.deepEqual(pushTargetOf(webpush("http://127.0.0.1:9/a"), loose), {
    kind: "webpush",
    endpoint: "http://127.0.0.1:9/a",
    ...keys,
  });
  refused(() => pushTargetOf(webpush("http://push.example/a"), loose));
  refused(() => pushTargetOf(webpush("https://u:p@push.example/a"), strict));
});

test("push device bodies: bad kinds, keys and URLs fail their schema", () => {
  const bad = [
    { kind: "sms", pushKey: "k" },
    { kind: "gateway", pushKey: "" },
    { kind: "gateway", pushKey: "with space" },
    { kind: "gateway", pushKey: "k".repeat(513) },
    { kind: "gateway", pushKey: "k", appId: "bad/app" },
    { kind: "webpush", subscription: { endpoint: "ftp://push.example/a", keys } },
    { kind: "webpush", subscription: { endpoint: `https://push.example/${"a".repeat(2048)}`, keys } },
    { kind: "webpush", subscription: { endpoint: "https://push.example/a", keys: { ...keys, auth: "!" } } },
    { kind: "webpush", subscription: { endpoint: "https://push.example/a" } },
  ];
  for (const b of bad) assert.equal(schemas.PushDeviceBody.safeParse(b).success, false, JSON.stringify(b));
  assert.equal(schemas.PushDeviceIdParams.safeParse({ id: "nothex" }).success, false);
});

test("a user registers at most PUSH_MAX_DEVICES devices (TOO_MANY_DEVICES); the view hides Web Push keys", async () => {
  const store = new MemoryStore();
  const c = config({ PUSH_MAX_DEVICES: "2" });
  const u = "a".repeat(24);
  const one = await registerPushDevice(store, c, u, { kind: "gateway", pushKey: "k1", appId: "" });
  await registerPushDevice(store, c, u, { kind: "gateway", pushKey: "k2", appId: "" });
  // Registering the same device again is not a new one.
  assert.equal(
    (await registerPushDevice(store, c, u, { kind: "gateway", pushKey: "k1", appId: "" })).created,
    false,
  );
  await assert.rejects(
    registerPushDevice(store, c, u, { kind: "gateway", pushKey: "k3", appId: "" }),
    (e: unknown) => e instanceof ProtocolError && e.code === "TOO_MANY_DEVICES",
  );
  assert.deepEqual(Object.keys(pushDeviceView(one.device)).sort(), [
    "appId",
    "createdAt",
    "id",
    "kind",
    "pushKey",
  ]);
  const w = await registerPushDevice(
    store,
    c,
    "b".repeat(24),
    pushTargetOf(webpush("https://push.example/a"), c),
  );
  assert.deepEqual(Object.keys(pushDeviceView(w.device)).sort(), ["createdAt", "endpoint", "id", "kind"]);
});
