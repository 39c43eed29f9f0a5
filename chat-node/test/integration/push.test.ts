// Offline notifications end to end (docs/chat-node.md, "Push notifications"): two chat-nodes on real
// Redis, RabbitMQ and FerretDB notify a push gateway and a Web Push service of this test's own on
// 127.0.0.1. The gateway gets Matrix-style JSON with the unread count; the Web Push body decrypts
// with the subscription's keys under a valid VAPID signature; 5xx answers are retried with backoff,
// a gateway that keeps failing ends in the dead-letter; one notification per user and channel per
// interval; muted channels only on a mention; nobody online is notified.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import webpush from "web-push";
import type { ChatNode } from "../../src/node.js";
import { startNode, startServices, sleep, TestUser, waitFor, type Services } from "../support/harness.js";
import { PushReceiver, Subscriber, verifyVapid, type PushRequest } from "../support/push-receiver.js";

const INTERVAL_S = 3;
const MAX_ATTEMPTS = 3;
const RETRY_BASE_MS = 200;
/** Long enough for a stored message's notification to have gone out if it were going to. */
const QUIET_MS = 1500;

let services: Services;
let receiver: PushReceiver;
let A: ChatNode;
let B: ChatNode;
let ann: TestUser;
let ben: TestUser;
const vapid = webpush.generateVAPIDKeys();

interface Notify {
  notification: {
    event_id: string;
    seq: number;
    room_id: string;
    type: string;
    sender: string;
    sender_display_name: string;
    content: { body: string };
    counts: { unread: number };
    devices: Array<{ app_id: string; pushkey: string }>;
  };
}

before(async () => {
  // The gateway rejects pushkeys that start with "stale-"; a Web Push path under /gone is 410.
  receiver = await PushReceiver.start((path, body) => {
    if (path === "/notify") {
      const req = JSON.parse(body.toString()) as Notify;
      const rejected = req.notification.devices.map((d) => d.pushkey).filter((k) => k.startsWith("stale-"));
      return { status: 200, body: { rejected } };
    }
    return path.startsWith("/gone") ? { status: 410 } : { status: 201 };
  });
  services = await startServices();
  const push = {
    PUSH_GATEWAY_URL: `${receiver.base}/notify`,
    PUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
    PUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
    PUSH_VAPID_SUBJECT: "mailto:ops@vibetalk.test",
    PUSH_ALLOW_HTTP_LOOPBACK: "true",
    PUSH_MIN_INTERVAL_SECONDS: String(INTERVAL_S),
    PUSH_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    PUSH_RETRY_BASE_MS: String(RETRY_BASE_MS),
  };
  // Partitions split between the nodes: a channel's owner (who notifies) is either of them.
  A = await startNode(services, { OWNED_PARTITIONS: "0-3", ...push });
  B = await startNode(services, { OWNED_PARTITIONS: "4-7", ...push });
  [ann, ben] = await Promise.all([TestUser.register(A, "ann"), TestUser.register(B, "ben")]);
  const r = await ben.api(B, "POST", "/push/devices", {
    kind: "gateway",
    pushKey: `ben-${randomBytes(8).toString("hex")}`,
    appId: "test.vibetalk.app",
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
});
after(async () => {
  for (const u of [ann, ben]) u?.closeAll();
  await Promise.all([A, B].map((n) => n?.stop()));
  await services?.stop();
  await receiver?.stop();
});

const notifies = (room: string): Notify[] =>
  receiver
    .to("/notify")
    .map((r) => JSON.parse(r.body.toString()) as Notify)
    .filter((n) => n.notification.room_id === room);

/** Sends from ann's socket and waits until the message comes back stored (its seq delivered to her). */
async function sendStored(channelId: string, body: string): Promise<number> {
  const s = ann.sockets[0] ?? (await ann.connect(A));
  const reply = await s.send(channelId, body);
  assert.equal(reply.ok, true, JSON.stringify(reply));
  const seq = (reply as { seq?: number }).seq;
  await waitFor(`"${body}" stored and delivered back`, () =>
    s.messages(channelId).some((m) => m.body === body && (seq === undefined || m.seq === seq)),
  );
  return s.messages(channelId).find((m) => m.body === body)?.seq ?? 0;
}

async function metric(node: ChatNode, name: string, kind: string): Promise<number> {
  const text = await (await fetch(`${node.opsUrl}/metrics`)).text();
  // One series per kind, with the node's default label beside it.
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(`kind="${kind}"`));
  if (!line) throw new Error(`no ${name}{kind="${kind}"} in ${node.opsUrl}/metrics`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}
const sum = async (name: string, kind: string) =>
  (await metric(A, name, kind)) + (await metric(B, name, kind));

test("an offline member's gateway device gets Matrix-style JSON with the unread count, once per interval", async () => {
  const ch = await ann.direct(A, ben);
  await sendStored(ch.id, "first");
  await sendStored(ch.id, "second");
  const [n] = await waitFor("a gateway notification", () => notifies(ch.id).length > 0 && notifies(ch.id));
  const at = receiver.to("/notify").find((r) => r.body.includes(ch.id))?.at ?? 0;
  assert.ok(n);
  assert.equal(n.notification.type, "vibetalk.message");
  assert.equal(n.notification.seq, 1);
  assert.equal(n.notification.sender, ann.id);
  assert.equal(n.notification.sender_display_name, ann.username);
  assert.equal(n.notification.content.body, "first");
  assert.deepEqual(n.notification.counts, { unread: 1 });
  assert.equal(n.notification.devices.length, 1);
  assert.equal(n.notification.devices[0]?.app_id, "test.vibetalk.app");
  await sleep(QUIET_MS);
  assert.equal(notifies(ch.id).length, 1, "the second message falls in the interval");
  // After the interval the next message notifies again, with every unread message counted.
  await sleep(Math.max(0, at + INTERVAL_S * 1000 + 100 - Date.now()));
  await sendStored(ch.id, "third");
  const later = await waitFor("a second notification", () => notifies(ch.id)[1]);
  assert.equal(later.notification.seq, 3);
  assert.deepEqual(later.notification.counts, { unread: 3 });
});

test("a member with a socket open is not notified", async () => {
  const g = await ann.group(A, "online", [ben]);
  const sb = await ben.connect(B);
  await sendStored(g.id, "you are here");
  await sb.waitMessages(g.id, 1);
  await sleep(QUIET_MS);
  assert.equal(notifies(g.id).length, 0);
  sb.close();
});

test("a muted channel (muted on the other node) notifies only on a mention", async () => {
  const g = await ann.group(A, "muted", [ben]);
  const r = await ben.api(B, "PUT", `/channels/${g.id}/mute`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await sendStored(g.id, "not for ben's phone");
  await sleep(QUIET_MS);
  assert.equal(notifies(g.id).length, 0);
  await sendStored(g.id, `@${ben.username} this one is`);
  const n = await waitFor("the mention's notification", () => notifies(g.id)[0]);
  assert.equal(n.notification.seq, 2);
  assert.deepEqual(n.notification.counts, { unread: 2 });
});

test("a gateway answering 503 is retried with backoff until it accepts; one that keeps failing ends in the dead-letter", async () => {
  const g1 = await ann.group(A, "retry", [ben]);
  const sentBefore = await sum("vibetalk_push_sent_total", "gateway");
  receiver.answer("/notify", { status: 503 }, { status: 503 });
  await sendStored(g1.id, "through on the third try");
  await waitFor(
    "the accepted attempt",
    () => receiver.to("/notify").filter((x) => x.body.includes(g1.id)).length === 3,
  );
  const tries = receiver.to("/notify").filter((x) => x.body.includes(g1.id));
  const gaps = tries.slice(1).map((t, i) => t.at - (tries[i] as PushRequest).at);
  assert.ok((gaps[0] ?? 0) >= RETRY_BASE_MS * 0.9, `first retry after ${gaps[0]} ms`);
  assert.ok((gaps[1] ?? 0) >= RETRY_BASE_MS * 2 * 0.9, `second retry after ${gaps[1]} ms (doubled)`);
  await waitFor(
    "sent counted",
    async () => (await sum("vibetalk_push_sent_total", "gateway")) === sentBefore + 1,
  );

  const g2 = await ann.group(A, "dead", [ben]);
  const failedBefore = await sum("vibetalk_push_failed_total", "gateway");
  receiver.answer("/notify", ...Array.from({ length: MAX_ATTEMPTS }, () => ({ status: 500 })));
  await sendStored(g2.id, "never through");
  await waitFor(
    "the dead-letter",
    async () => (await sum("vibetalk_push_failed_total", "gateway")) === failedBefore + 1,
  );
  assert.equal(receiver.to("/notify").filter((x) => x.body.includes(g2.id)).length, MAX_ATTEMPTS);
  await sleep(RETRY_BASE_MS * 8);
  assert.equal(
    receiver.to("/notify").filter((x) => x.body.includes(g2.id)).length,
    MAX_ATTEMPTS,
    "no more tries",
  );
});

test("a pushkey the gateway rejects is removed from the user's devices", async () => {
  const cat = await TestUser.register(B, "cat");
  const stale = await cat.api<{ device: { id: string } }>(B, "POST", "/push/devices", {
    kind: "gateway",
    pushKey: "stale-key",
  });
  assert.equal(stale.status, 201);
  const ch = await ann.direct(A, cat);
  await sendStored(ch.id, "to a phone long gone");
  await waitFor("the device removed", async () => {
    const r = await cat.api<{ devices: unknown[] }>(A, "GET", "/push/devices");
    return r.body.devices.length === 0;
  });
});

test("Web Push: the body decrypts with the subscription's keys under the node's VAPID signature; 410 removes it", async () => {
  const dan = await TestUser.register(A, "dan");
  const sub = new Subscriber(`${receiver.base}/wp/${randomBytes(6).toString("hex")}`);
  const reg = await dan.api(A, "POST", "/push/devices", { kind: "webpush", subscription: sub.subscription });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  const vapidReply = await dan.api<{ publicKey: string }>(B, "GET", "/push/vapid");
  assert.equal(vapidReply.body.publicKey, vapid.publicKey);
  const ch = await ann.direct(A, dan);
  const path = new URL(sub.endpoint).pathname;
  receiver.answer(path, { status: 502 });
  await sendStored(ch.id, "héllo dan 👋");
  const [, req] = await waitFor(
    "the retried Web Push request",
    () => receiver.to(path).length >= 2 && receiver.to(path),
  );
  assert.ok(req);
  assert.equal(req.headers["content-encoding"], "aes128gcm");
  assert.ok(Number(req.headers["ttl"]) > 0, "a TTL header");
  const claims = verifyVapid(req.headers, vapid.publicKey, sub.endpoint);
  assert.equal(claims.sub, "mailto:ops@vibetalk.test");
  const payload = JSON.parse(sub.decrypt(req.body)) as Record<string, unknown>;
  assert.deepEqual(payload, {
    channelId: ch.id,
    seq: 1,
    senderName: ann.username,
    body: "héllo dan 👋",
    unread: 1,
  });
  // A subscription the push service no longer knows is dropped.
  const gone = new Subscriber(`${receiver.base}/gone/${randomBytes(6).toString("hex")}`);
  const eve = await TestUser.register(A, "eve");
  assert.equal(
    (await eve.api(A, "POST", "/push/devices", { kind: "webpush", subscription: gone.subscription })).status,
    201,
  );
  const ch2 = await ann.direct(A, eve);
  await sendStored(ch2.id, "anyone there?");
  await waitFor("the gone subscription removed", async () => {
    const r = await eve.api<{ devices: unknown[] }>(B, "GET", "/push/devices");
    return r.body.devices.length === 0;
  });
  assert.equal(receiver.to(new URL(gone.endpoint).pathname).length, 1, "410 is not retried");
});
