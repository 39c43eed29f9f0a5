// Push device registration (docs/chat-node.md, "Push notifications"): the endpoint rule and the bound, on the fake store.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PREVIEW_CHARS, ProtocolError, schemas } from "@vibetalk/protocol";
import { loadConfig } from "../../src/config.js";
import {
  gatewayRequest,
  offlineUsers,
  pushBody,
  pushCandidates,
  retryDelayMs,
  webPushPayload,
} from "../../src/domain/push.js";
import { pushDeviceView, pushTargetOf, registerPushDevice } from "../../src/services/push-devices.js";
import { member, message } from "../support/contracts/store.js";
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

test("who is notified: members but the sender, not muted unless mentioned, plain messages only, offline only", () => {
  const [s, a, b, c] = ["s", "a", "b", "c"].map((x) => x.repeat(24)) as [string, string, string, string];
  const members = [
    member("g", s),
    member("g", a),
    { ...member("g", b), muted: true },
    { ...member("g", c), muted: true },
  ];
  const m = { ...message("g", 5, s), mentions: [c] };
  assert.deepEqual(
    pushCandidates(m, members).map((x) => x.userId),
    [a, c],
  );
  for (const kind of ["edit", "delete", "reaction"] as const)
    assert.deepEqual(pushCandidates({ ...m, kind, targetSeq: 1 }, members), []);
  const presence = [
    { userId: a, online: true, lastSeenAt: null },
    { userId: c, online: false, lastSeenAt: null },
  ];
  assert.deepEqual(offlineUsers([a, c], presence), [c]);
});

test("the retry schedule doubles from the base, with at most a quarter of jitter", () => {
  assert.deepEqual(
    [1, 2, 3, 4].map((n) => retryDelayMs(n, 1000)),
    [1000, 2000, 4000, 8000],
  );
  assert.equal(retryDelayMs(3, 1000, 0.999), 4999);
});

test("the gateway request has the push gateway's shape; previews are cut; Web Push carries a small JSON", () => {
  const m = { ...message("g", 7, "s".repeat(24)), body: "x".repeat(500) };
  const gw = {
    kind: "gateway",
    pushKey: "pk",
    appId: "app",
    id: "1".repeat(24),
    userId: "u",
    createdAt: new Date(),
  } as const;
  const wp = {
    kind: "webpush",
    endpoint: "https://e/x",
    p256dh: "p",
    auth: "a",
    id: "2".repeat(24),
    userId: "u",
    createdAt: new Date(),
  } as const;
  const req = gatewayRequest({ message: m, senderName: "Sam", unread: 3 }, [gw, wp]);
  assert.deepEqual(req, {
    notification: {
      event_id: m.id,
      seq: 7,
      room_id: "g",
      type: "vibetalk.message",
      sender: m.senderId,
      sender_display_name: "Sam",
      content: { body: `${"x".repeat(PREVIEW_CHARS - 1)}…` },
      counts: { unread: 3 },
      devices: [{ app_id: "app", pushkey: "pk" }],
    },
  });
  assert.equal(pushBody({ ...m, body: "", fileIds: ["f".repeat(24)] }), "sent a file");
  const payload = webPushPayload({ message: { ...m, body: "hi" }, senderName: "Sam", unread: 1 });
  assert.deepEqual(JSON.parse(payload), { channelId: "g", seq: 7, senderName: "Sam", body: "hi", unread: 1 });
});
