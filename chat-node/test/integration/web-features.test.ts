// The web client's features in Chromium, two users on two chat-nodes (A owns partitions 0-3, B 4-7):
// day separators, user search, keyboard use and labels, group management by role, notifications,
// and a phone's width. The client is bundled once for the file (test/support/web.ts).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import type { ChatNode } from "../../src/node.js";
import { startNode, type Services } from "../support/harness.js";
import { pageErrors, register, startWebCluster, type WebClient, type WebCluster } from "../support/web.js";

let services: Services;
let A: ChatNode;
let B: ChatNode;
let web: WebClient;
let cluster: WebCluster | undefined;

before(async () => {
  cluster = await startWebCluster();
  ({ services, A, B, web } = cluster);
});
after(() => cluster?.stop());

const page = (opts: Parameters<Browser["newContext"]>[0] = {}): Promise<Page> => cluster!.page(opts);

/** Ann on node A and Ben on node B, registered, with a direct chat Ann started by searching for Ben. */
async function pair(prefix: string, optsB: Parameters<Browser["newContext"]>[0] = {}) {
  const a = await page();
  const b = await page(optsB);
  const errors = pageErrors(a, b);
  await register(a, A.url, `${prefix}ann`);
  await register(b, B.url, `${prefix}ben`);
  return { a, b, errors };
}

/** Controls without an accessible name (aria-label, a label, text or a title). */
function unlabelled(p: Page): Promise<string[]> {
  return p.evaluate(() =>
    Array.from(
      document.querySelectorAll<HTMLElement>("button, input, select, textarea, a[href], [role=option]"),
    )
      .filter((e) => e.offsetParent !== null || e.getAttribute("type") === "file")
      .filter((e) => {
        const labels = (e as HTMLInputElement).labels;
        const named = e.getAttribute("aria-label") || e.title || (labels && labels.length > 0);
        return !named && !(e.textContent ?? "").trim();
      })
      .map((e) => e.outerHTML.slice(0, 80)),
  );
}

test("user search, keyboard use, labels and day separators", async () => {
  const tomorrow = new Date(Date.now() + 24 * 3600_000);
  const login = await page();
  await login.goto(A.url);
  await login.waitForSelector("#auth:not([hidden])");
  assert.deepEqual(await unlabelled(login), [], "the login form's controls are named");
  const { a, b, errors } = await pair("kb");
  // Ben's browser believes it is tomorrow: today's messages are "Yesterday" there.
  await b.clock.setFixedTime(tomorrow);
  assert.deepEqual(await unlabelled(a), []);
  // Search by a part of the name; arrow down and Enter pick; Escape closes the list first.
  await a.fill("#new-chat-user", "kbb");
  await a.waitForSelector("#user-results [role=option] >> text=KBBEN");
  assert.equal(await a.getAttribute("#new-chat-user", "aria-expanded"), "true");
  await a.press("#new-chat-user", "Escape");
  await a.waitForSelector("#user-results", { state: "hidden" });
  await a.fill("#new-chat-user", "kbbe");
  await a.waitForSelector("#user-results [role=option] >> text=@kbben");
  await a.press("#new-chat-user", "ArrowDown");
  assert.equal(await a.getAttribute("#new-chat-user", "aria-activedescendant"), "user-results-0");
  await a.press("#new-chat-user", "Enter");
  await a.waitForSelector("#chat-title >> text=KBBEN");
  // Focus moves to the composer once the chat has loaded (the title may show a moment before, from a
  // presence reply); Enter sends; Tab goes on to Send.
  await a.waitForFunction(() => document.activeElement?.id === "body", null, { timeout: 5_000 });
  await a.keyboard.type("first of the day");
  await a.keyboard.press("Enter");
  // Stored, not pending: a pending message is drawn after the days, without a separator of its own.
  await a.waitForSelector(".msg.mine:not(.pending) >> text=first of the day");
  await a.keyboard.press("Tab");
  assert.equal(await a.evaluate(() => document.activeElement?.id), "send");
  assert.deepEqual(await a.$$eval("#messages .day", (d) => d.map((e) => e.textContent)), ["Today"]);
  // Ben opens the chat from the keyboard: the chat list entry is a button; Enter on it.
  await b.waitForSelector(".channel-list button.open >> text=KBANN", { timeout: 15_000 });
  await b.focus(".channel-list button.open");
  await b.keyboard.press("Enter");
  await b.waitForSelector(".msg >> text=first of the day");
  assert.deepEqual(await b.$$eval("#messages .day", (d) => d.map((e) => e.textContent)), ["Yesterday"]);
  assert.deepEqual(await unlabelled(b), []);
  assert.deepEqual(errors, []);
});

test("group management: each control only for the roles allowed; rename, roles, remove, add, leave", async () => {
  const { a, b, errors } = await pair("gm");
  await a.fill("#new-group-name", "crew");
  await a.fill("#new-group-members", "gmben");
  await a.click('#new-group button[type="submit"]');
  await a.waitForSelector("#chat-title >> text=crew");
  await a.click("#group-info");
  await a.waitForSelector("#group-panel [data-user=gmben] >> text=member");
  assert.equal(await a.isVisible("#group-rename"), true, "the owner renames");
  // Ben, a member: no rename, no add, no remove or role buttons, only leave.
  await b.click(".channel-list button.open >> text=crew", { timeout: 15_000 });
  await b.click("#group-info");
  await b.waitForSelector("#group-panel [data-user=gmann] >> text=owner");
  assert.equal(await b.isVisible("#group-rename"), false);
  assert.equal(await b.isVisible("#group-add"), false);
  assert.equal(await b.locator("#group-members button").count(), 0);
  assert.equal(await b.isVisible("#group-leave"), true);
  assert.deepEqual(await unlabelled(b), []);
  // Ann makes Ben an admin: Ben's panel follows (the channel event reaches node B) and shows rename.
  await a.click('#group-members [aria-label="admin role for GMBEN"]');
  await a.waitForSelector("#group-panel [data-user=gmben] >> text=admin");
  await b.waitForSelector("#group-rename", { state: "visible", timeout: 15_000 });
  assert.equal(await b.locator("#group-members button").count(), 0, "an admin cannot remove the owner");
  await b.fill("#group-name", "crew two");
  await b.press("#group-name", "Enter");
  await a.waitForSelector("#chat-title >> text=crew two", { timeout: 15_000 });
  // Escape closes the panel and gives focus back to the button that opened it.
  await b.press("#group-name", "Escape");
  await b.waitForSelector("#group-panel", { state: "hidden" });
  assert.equal(await b.evaluate(() => document.activeElement?.id), "group-info");
  // Ann removes Ben: the group leaves Ben's list; she adds him back by search; he leaves.
  await a.click('#group-members [aria-label="remove GMBEN"]');
  await b.waitForSelector(".channel-list >> text=crew two", { state: "detached", timeout: 15_000 });
  await a.waitForSelector("#chat-presence >> text=1 members");
  await a.fill("#group-add-user", "gmb");
  await a.click("#group-add-results [role=option] >> text=GMBEN");
  await a.waitForSelector("#group-panel [data-user=gmben] >> text=member");
  await b.click(".channel-list button.open >> text=crew two", { timeout: 15_000 });
  await b.click("#group-info");
  await b.click("#group-leave");
  await b.waitForSelector(".channel-list >> text=crew two", { state: "detached" });
  await a.waitForSelector("#chat-presence >> text=1 members", { timeout: 15_000 });
  assert.deepEqual(errors, []);
});

test("notifications: asked for from a button; shown for a message while the tab is hidden", async () => {
  const { a, b, errors } = await pair("nt");
  // Count the notifications Ben's page makes (the browser's own Notification, wrapped).
  await b.evaluate(() => {
    const Real = window.Notification;
    const shown: string[] = [];
    Object.assign(window, { shown });
    window.Notification = class extends Real {
      constructor(title: string, opts?: NotificationOptions) {
        super(title, opts);
        shown.push(`${title}: ${opts?.body ?? ""}`);
      }
    } as typeof Notification;
  });
  await b.waitForSelector("#notify", { state: "visible" });
  await b.context().grantPermissions(["notifications"], { origin: B.url });
  await b.click("#notify");
  await b.waitForSelector("#notify", { state: "hidden" });
  assert.equal(await b.evaluate(() => Notification.permission), "granted");
  await a.fill("#new-chat-user", "ntben");
  await a.press("#new-chat-user", "Enter");
  await a.waitForSelector("#composer:not([hidden])");
  await a.fill("#body", "while you look");
  await a.press("#body", "Enter");
  await b.waitForSelector(".channel-list >> text=while you look", { timeout: 15_000 });
  // Now Ben's tab is hidden (another tab in front).
  await b.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await a.fill("#body", "while you are away");
  await a.press("#body", "Enter");
  await b.waitForSelector(".channel-list >> text=while you are away", { timeout: 15_000 });
  const shown = await b.evaluate(() => (window as unknown as { shown: string[] }).shown);
  assert.deepEqual(shown, ["NTANN: while you are away"]);
  assert.deepEqual(errors, []);
});

test("a phone's width (360 px): the chat list and the conversation are two views", async () => {
  const phone = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true };
  const { a, b, errors } = await pair("ph", phone);
  await a.fill("#new-chat-user", "phben");
  await a.press("#new-chat-user", "Enter");
  await a.waitForSelector("#composer:not([hidden])");
  await a.fill("#body", "hello small screen");
  await a.press("#body", "Enter");
  assert.equal(await b.isVisible(".sidebar"), true);
  assert.equal(await b.isVisible(".chat"), false);
  await b.click(".channel-list button.open >> text=PHANN", { timeout: 15_000 });
  await b.waitForSelector(".msg >> text=hello small screen");
  assert.equal(await b.isVisible(".sidebar"), false);
  assert.equal(await b.isVisible("#back"), true);
  assert.equal(await b.evaluate(() => document.documentElement.scrollWidth), 360, "no sideways scrolling");
  const composer = await b.locator("#composer").boundingBox();
  assert.ok(composer && composer.x >= 0 && composer.x + composer.width <= 360, "the composer fits");
  await b.fill("#body", "tiny reply");
  await b.press("#body", "Enter");
  await a.waitForSelector(".msg >> text=tiny reply");
  await b.click("#back");
  assert.equal(await b.isVisible(".sidebar"), true);
  assert.equal(await b.isVisible(".chat"), false);
  assert.equal(await a.isVisible("#back"), false, "the desktop shows both, without the back button");
  assert.deepEqual(errors, []);
});

test("the official group: in every new account's list, read-only for members, the service's posts under the group's name", async () => {
  // A third node with the group on (the others have it off): it creates the group, backfills the
  // accounts the tests above made, and joins those who register through it.
  const token = "web-features-service-token-0123456789";
  const C = await startNode(services, {
    OWNED_PARTITIONS: "none",
    PUBLIC_DIR: web.dir,
    OFFICIAL_GROUP: "true",
    OFFICIAL_GROUP_NAME: "VibeTalk News",
    OFFICIAL_SERVICE_TOKEN: token,
  });
  try {
    const p = await page();
    const errors = pageErrors(p);
    await register(p, C.url, "ofmember");
    await p.click(".channel-list button.open >> text=VibeTalk News", { timeout: 15_000 });
    await p.waitForSelector("#chat-note:not([hidden])");
    assert.equal(await p.isVisible("#composer"), false, "a member cannot post: no composer");
    const r = await fetch(`${C.url}/api/v1/official/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ clientMsgId: "web-announcement-1", body: "maintenance tonight" }),
    });
    assert.equal(r.status, 202, await r.text());
    const msg = p.locator(".msg", { hasText: "maintenance tonight" });
    await msg.waitFor({ timeout: 15_000 });
    assert.equal(await msg.locator(".sender").textContent(), "VibeTalk News");
    assert.deepEqual(errors, []);
  } finally {
    await C.stop();
  }
});
