// Web Push in the web client, in Chromium, two users on two chat-nodes with VAPID keys: the service
// worker (/sw.js) is served as JavaScript without a long cache, registers and is active at scope /, and
// shows the pushes delivered to it through the DevTools protocol (ServiceWorker.deliverPushMessage): a
// message's payload as the node sends it, and a generic one for a payload it cannot read. Subscribing
// itself fails here (headless Chromium reaches no push service): the page warns and works on.
// A click (the worker's notificationclick handler run on a shown notification) opens the chat in the
// open page; `/?channel=<id>` (what the worker opens on a click with no window open) opens that chat.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { CDPSession, Page } from "playwright-core";
import webpush from "web-push";
import { waitFor } from "../support/harness.js";
import { pageErrors, register, startWebCluster, type WebCluster } from "../support/web.js";

const vapid = webpush.generateVAPIDKeys();
let cluster: WebCluster | undefined;

before(async () => {
  cluster = await startWebCluster({
    PUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
    PUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
    PUSH_VAPID_SUBJECT: "mailto:ops@vibetalk.test",
  });
});
after(() => cluster?.stop());

interface Shown {
  title: string;
  body: string;
  tag: string;
  data: unknown;
}

/** The notifications the page's service worker shows now. */
function notifications(p: Page): Promise<Shown[]> {
  return p.evaluate(async () => {
    const reg = await navigator.serviceWorker.ready;
    const list = await reg.getNotifications();
    return list.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data as unknown }));
  });
}

/** The id of the service worker registration at `scope`, from the DevTools protocol. */
async function registrationId(cdp: CDPSession, scope: string): Promise<string> {
  const seen = new Map<string, string>();
  cdp.on("ServiceWorker.workerRegistrationUpdated", (e) => {
    for (const r of e.registrations) if (!r.isDeleted) seen.set(r.scopeURL, r.registrationId);
  });
  await cdp.send("ServiceWorker.enable");
  return waitFor(`a registration at ${scope}`, () => seen.get(scope));
}

/**
 * Delivers a push until the worker shows it (`shown` notifications in all): DevTools drops a push
 * that reaches a worker still starting up, under load. A repeat shows nothing new (same tag).
 */
async function deliver(
  cdp: CDPSession,
  push: { origin: string; registrationId: string; data: string },
  p: Page,
  shown: number,
): Promise<void> {
  await waitFor(
    `notification ${shown}`,
    async () => {
      if ((await notifications(p)).length >= shown) return true;
      await cdp.send("ServiceWorker.deliverPushMessage", push);
      for (let i = 0; i < 10; i++) {
        if ((await notifications(p)).length >= shown) return true;
        await new Promise((r) => setTimeout(r, 200));
      }
      return false;
    },
    30_000,
  );
}

test("sw.js is served as JavaScript, not cached for long", async () => {
  const res = await fetch(`${cluster!.A.url}/sw.js`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^(application|text)\/javascript/);
  assert.equal(res.headers.get("cache-control"), "public, max-age=0");
  assert.match(await res.text(), /showNotification/);
});

test("the worker registers at /, shows delivered pushes; a failed subscribe leaves the page working", async () => {
  const { A, B } = cluster!;
  const a = await cluster!.page();
  const b = await cluster!.page();
  const errors = pageErrors(a, b);
  const warnings: string[] = [];
  b.on("console", (m) => {
    if (m.type() === "warning") warnings.push(m.text());
  });
  // Ben allowed notifications before: the page subscribes once logged in.
  await b.context().grantPermissions(["notifications"], { origin: B.url });
  await register(a, A.url, "wpann");
  await register(b, B.url, "wpben");
  const worker = await b.evaluate(async () => {
    const reg = await navigator.serviceWorker.ready;
    return { scope: reg.scope, state: reg.active?.state, script: reg.active?.scriptURL };
  });
  assert.deepEqual(worker, { scope: `${B.url}/`, state: "activated", script: `${B.url}/sw.js` });

  // subscribe() has no push service to reach: a warning names the failure, and nothing is registered.
  const warning = await waitFor(
    "the web push warning",
    () => warnings.find((w) => w.startsWith("web push: not subscribed:")),
    30_000,
  );
  console.log(`# ${warning}`);
  assert.match(warning, /not subscribed: \w*Error: \S/);
  const token = await b.evaluate(() => localStorage.getItem("vt.token"));
  const devices = await fetch(`${B.url}/api/v1/push/devices`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.deepEqual(await devices.json(), { devices: [] });
  assert.equal(
    await b.evaluate(() => Object.keys(localStorage).some((k) => k.startsWith("vt.push."))),
    false,
  );

  // The page works on: a message both ways.
  await a.fill("#new-chat-user", "wpben");
  await a.press("#new-chat-user", "Enter");
  await a.waitForSelector("#composer:not([hidden])");
  await a.fill("#body", "are pushes on?");
  await a.press("#body", "Enter");
  await b.click(".channel-list button.open >> text=WPANN", { timeout: 15_000 });
  await b.waitForSelector(".msg >> text=are pushes on?");
  await b.fill("#body", "not from here");
  await b.press("#body", "Enter");
  await a.waitForSelector(".msg >> text=not from here", { timeout: 15_000 });

  const channels = await fetch(`${B.url}/api/v1/channels`, { headers: { authorization: `Bearer ${token}` } });
  const { channels: list } = (await channels.json()) as { channels: { id: string }[] };
  assert.equal(list.length, 1);
  const channelId = list[0]!.id;

  // A push as the node sends it (domain/push.ts webPushPayload), delivered by the browser itself.
  const cdp = await b.context().newCDPSession(b);
  const id = await registrationId(cdp, `${B.url}/`);
  const origin = new URL(B.url).origin;
  const payload = { channelId, seq: 1, senderName: "WPANN", body: "are pushes on?", unread: 1 };
  await deliver(cdp, { origin, registrationId: id, data: JSON.stringify(payload) }, b, 1);
  assert.deepEqual(await notifications(b), [
    { title: "WPANN", body: "are pushes on?", tag: channelId, data: { channelId } },
  ]);

  // A payload the worker cannot read still shows something.
  await deliver(cdp, { origin, registrationId: id, data: "{not json" }, b, 2);
  const generic = (await notifications(b)).filter((n) => n.tag !== channelId);
  assert.deepEqual(generic, [{ title: "New message", body: "", tag: "", data: {} }]);
  await cdp.detach();

  // A click on the notification with Ben's page open (on no chat after a reload): the worker's
  // notificationclick handler, run on the shown notification, posts the page the channel to open.
  await b.reload();
  await b.waitForSelector("#conn-state.on");
  assert.equal(await b.isVisible("#composer"), false);
  const [sw] = b.context().serviceWorkers();
  assert.ok(sw, "the context's service worker");
  await sw.evaluate(async (tag) => {
    const scope = self as unknown as {
      registration: { getNotifications(): Promise<{ tag: string }[]> };
      dispatchEvent(e: Event): boolean;
    };
    const [n] = (await scope.registration.getNotifications()).filter((x) => x.tag === tag);
    const Ev = (globalThis as unknown as { NotificationEvent: new (t: string, i: object) => Event })
      .NotificationEvent;
    // An event the test makes is untrusted: its handler's waitUntil throws, after openChat started.
    try {
      scope.dispatchEvent(new Ev("notificationclick", { notification: n }));
    } catch {
      // reported in the worker only
    }
  }, channelId);
  await b.waitForSelector("#chat-title >> text=WPANN");
  await b.waitForSelector(".msg >> text=not from here");

  // What the worker opens on a click when no window is open: the page on that chat.
  const c = await cluster!.page();
  await c.goto(B.url);
  await c.evaluate((t) => localStorage.setItem("vt.token", t ?? ""), token);
  await c.goto(`${B.url}/?channel=${channelId}`);
  await c.waitForSelector("#chat-title >> text=WPANN");
  await c.waitForSelector(".msg >> text=are pushes on?");
  assert.equal(await c.evaluate(() => location.search), "");
  assert.deepEqual(errors, []);
});
