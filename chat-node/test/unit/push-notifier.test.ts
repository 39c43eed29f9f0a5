// The push notifier (docs/chat-node.md, "Push notifications") on the fakes, delivering for real over
// HTTP to this test's own servers on 127.0.0.1: a push gateway and a Web Push endpoint.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import webpush from "web-push";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics } from "../../src/metrics.js";
import type { MemberRecord } from "../../src/ports.js";
import { PushNotifier } from "../../src/services/push-notifier.js";
import { channel, member, message } from "../support/contracts/store.js";
import { MemoryPresenceServer } from "../support/fakes/memory-presence.js";
import { MemoryPushThrottle } from "../support/fakes/memory-push-throttle.js";
import { MemoryStore } from "../support/fakes/memory-store.js";

interface Received {
  path: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
}
/** Answers by path: `/fail-N/…` fails N times then succeeds, `/down` always fails, `/gone` is 410. */
let received: Received[] = [];
const failures = new Map<string, number>();
let server: Server;
let base = "";
before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "";
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks) });
      const n = /^\/fail-(\d+)/.exec(path);
      const seen = (failures.get(path) ?? 0) + 1;
      failures.set(path, seen);
      if (path.startsWith("/down") || (n && seen <= Number(n[1]))) return void res.writeHead(503).end();
      if (path.startsWith("/gone")) return void res.writeHead(410).end();
      const body = path.startsWith("/gateway") ? rejecting(Buffer.concat(chunks)) : "";
      res
        .writeHead(path.startsWith("/gateway") ? 200 : 201, { "content-type": "application/json" })
        .end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

/** The gateway rejects pushkeys starting with `bad`. */
function rejecting(body: Buffer): string {
  const req = JSON.parse(body.toString()) as { notification: { devices: Array<{ pushkey: string }> } };
  return JSON.stringify({
    rejected: req.notification.devices.map((d) => d.pushkey).filter((k) => k.startsWith("bad")),
  });
}

const [sender, alice, bob, carol] = ["a", "b", "c", "d"].map((x) => x.repeat(24)) as [
  string,
  string,
  string,
  string,
];
const vapid = webpush.generateVAPIDKeys();

async function setup(gatewayPath: string, extra: Record<string, string> = {}) {
  received = [];
  const config = loadConfig({
    REDIS_URL: "redis://127.0.0.1:6379",
    RABBITMQ_URL: "amqp://guest:guest@127.0.0.1:5672",
    MONGODB_URL: "mongodb://127.0.0.1:27017/vibetalk",
    JWT_SECRET: "0123456789abcdef0123456789abcdef",
    PUSH_GATEWAY_URL: `${base}${gatewayPath}`,
    PUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
    PUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
    PUSH_VAPID_SUBJECT: "mailto:ops@vibetalk.test",
    PUSH_RETRY_BASE_MS: "10",
    PUSH_ALLOW_HTTP_LOOPBACK: "true",
    ...extra,
  }).push;
  const store = new MemoryStore();
  const users = new Map<string, string>();
  for (const [id, name] of [
    [sender, "Sam"],
    [alice, "Alice"],
    [bob, "Bob"],
    [carol, "Carol"],
  ] as const) {
    const u = await store.createUser({ username: name.toLowerCase(), displayName: name, passwordHash: "x" });
    users.set(id, u.id);
  }
  const id = (x: string) => users.get(x) as string;
  const members = new Map<string, MemberRecord>([
    [id(sender), member("g", id(sender))],
    [id(alice), member("g", id(alice))],
    [id(bob), member("g", id(bob))],
    [id(carol), { ...member("g", id(carol)), muted: true }],
  ]);
  // The notifier reads the offline members again from the store (their mute and last read).
  await store.addMembers("g", [...members.values()]);
  const presence = new MemoryPresenceServer().node("n1", 30_000);
  await presence.join([id(bob)]);
  const metrics = createMetrics("t", { defaultMetrics: false });
  const notifier = new PushNotifier({
    config,
    store,
    members: {
      get: async () => ({
        channel: channel("g", id(sender)),
        members,
        large: false,
        loadedAt: 0,
        version: 0,
      }),
    },
    presence,
    throttle: new MemoryPushThrottle(),
    metrics,
    log: createLogger("silent", "push-test"),
  });
  for (const u of [alice, bob, carol])
    await store.addPushDevice(id(u), { kind: "gateway", pushKey: `key-${u}`, appId: "app" }, 10);
  const count = async (name: "pushSent" | "pushFailed", kind: string) =>
    (await metrics[name].get()).values.find((v) => v.labels["kind"] === kind)?.value ?? 0;
  return { store, notifier, id, count, msg: (seq: number) => message("g", seq, id(sender)) };
}

const gatewayCalls = () => received.filter((r) => r.path.includes("gateway"));

test("an offline member gets one notification; online, muted and the sender none; twice in the interval is once", async () => {
  const t = await setup("/gateway");
  t.notifier.notify([t.msg(1), t.msg(2)]);
  t.notifier.notify([t.msg(3)]);
  await t.notifier.idle();
  assert.equal(gatewayCalls().length, 1);
  const body = JSON.parse(gatewayCalls()[0]?.body.toString() ?? "{}") as {
    notification: Record<string, unknown>;
  };
  assert.equal(body.notification["sender_display_name"], "Sam");
  assert.deepEqual(body.notification["counts"], { unread: 1 });
  assert.deepEqual(body.notification["devices"], [{ app_id: "app", pushkey: `key-${alice}` }]);
  assert.equal(await t.count("pushSent", "gateway"), 1);
  // A mention reaches the muted member (decision 59).
  t.notifier.notify([{ ...t.msg(4), mentions: [t.id(carol)] }]);
  await t.notifier.idle();
  assert.equal(gatewayCalls().length, 2);
  // Edits and reactions notify nobody.
  t.notifier.notify([{ ...t.msg(5), kind: "reaction", targetSeq: 1, emoji: "👍", on: true }]);
  await t.notifier.idle();
  assert.equal(gatewayCalls().length, 2);
});

test("a gateway that fails twice is retried until it succeeds; one that always fails ends in the dead-letter", async () => {
  const t = await setup("/fail-2/gateway");
  t.notifier.notify([t.msg(1)]);
  await t.notifier.idle();
  assert.equal(gatewayCalls().length, 3);
  assert.equal(await t.count("pushSent", "gateway"), 1);
  const down = await setup("/down/gateway", { PUSH_MAX_ATTEMPTS: "4" });
  down.notifier.notify([down.msg(1)]);
  await down.notifier.idle();
  assert.equal(gatewayCalls().length, 4);
  assert.equal(await down.count("pushFailed", "gateway"), 1);
  assert.equal(await down.count("pushSent", "gateway"), 0);
});

test("a pushkey the gateway rejects is removed", async () => {
  const t = await setup("/gateway");
  await t.store.addPushDevice(t.id(alice), { kind: "gateway", pushKey: "bad-key", appId: "app" }, 10);
  t.notifier.notify([t.msg(1)]);
  await t.notifier.idle();
  assert.deepEqual(
    (await t.store.pushDevicesOf([t.id(alice)])).map((d) => d.kind === "gateway" && d.pushKey),
    [`key-${alice}`],
  );
});

test("Web Push: a VAPID-signed aes128gcm request to the endpoint; a 410 removes the subscription", async () => {
  const t = await setup("/gateway");
  const keys = webpush.generateVAPIDKeys();
  const sub = (path: string) => ({
    kind: "webpush" as const,
    endpoint: `${base}${path}`,
    // A P-256 public key serves as the subscription's p256dh; auth is any 16 bytes.
    p256dh: keys.publicKey,
    auth: Buffer.alloc(16, 7).toString("base64url"),
  });
  await t.store.addPushDevice(t.id(alice), sub("/push/ok"), 10);
  await t.store.addPushDevice(t.id(alice), sub("/gone/x"), 10);
  t.notifier.notify([t.msg(1)]);
  await t.notifier.idle();
  const ok = received.find((r) => r.path === "/push/ok");
  assert.ok(ok, "the endpoint got the message");
  assert.match(String(ok.headers["authorization"]), /^vapid t=[\w-]+\.[\w-]+\.[\w-]+, k=[\w-]+$/);
  assert.equal(ok.headers["content-encoding"], "aes128gcm");
  assert.ok(ok.body.length > 0 && !ok.body.toString().includes("Sam"), "the body is encrypted");
  assert.equal(received.filter((r) => r.path === "/gone/x").length, 1, "a 410 is not retried");
  assert.deepEqual(
    (await t.store.pushDevicesOf([t.id(alice)])).map((d) => (d.kind === "webpush" ? d.endpoint : d.kind)),
    ["gateway", `${base}/push/ok`],
  );
  assert.equal(await t.count("pushSent", "webpush"), 1);
});
