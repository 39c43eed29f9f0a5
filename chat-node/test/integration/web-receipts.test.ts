// Receipts in the web client (docs/chat-node.md, "Web client"): in a large channel my messages show the
// receipt counts the cluster sends (`receipt:counts`, docs/protocol.md "Large channels"), in a small
// one the ticks of each member's receipts. LARGE_CHANNEL_MEMBERS=3 makes a group of three large; the
// counts come every 300 ms here, from receipts flushed to the store within 100 ms.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import type { ChatNode } from "../../src/node.js";
import { pageErrors, register, startWebCluster, type WebCluster } from "../support/web.js";

let A: ChatNode;
let B: ChatNode;
let cluster: WebCluster | undefined;

before(async () => {
  cluster = await startWebCluster({
    LARGE_CHANNEL_MEMBERS: "3",
    RECEIPT_COUNTS_INTERVAL_MS: "300",
    RECEIPT_FLUSH_MS: "100",
  });
  ({ A, B } = cluster);
});
after(() => cluster?.stop());

/** Creates a group named `name` in Ann's page with the members named, and sends `text` to it. */
async function groupWith(a: Page, name: string, members: string[], text: string): Promise<void> {
  await a.fill("#new-group-name", name);
  await a.fill("#new-group-members", members.join(", "));
  await a.click('#new-group button[type="submit"]');
  await a.waitForSelector(`#chat-title >> text=${name}`);
  await a.fill("#body", text);
  await a.press("#body", "Enter");
  await a.waitForSelector(`.msg.mine:not(.pending) >> text=${text}`);
}

/** The member opens the group from their list and sees the message (which marks it read). */
async function reads(p: Page, name: string, text: string): Promise<void> {
  await p.click(`.channel-list li >> text=${name}`, { timeout: 15_000 });
  await p.waitForSelector(`.msg >> text=${text}`);
}

const countsLabel = (a: Page, text: string) =>
  a.locator(`.msg.mine:has-text("${text}") .ticks.counts`).getAttribute("aria-label");

test("a large group: my message shows how many members it reached and read it, as they read", async () => {
  const [a, b, c] = [await cluster!.page(), await cluster!.page(), await cluster!.page()];
  const errors = pageErrors(a, b, c);
  await register(a, A.url, "rcann");
  await register(b, B.url, "rcben");
  await register(c, A.url, "rccal");
  await groupWith(a, "big", ["rcben", "rccal"], "hello all");
  await reads(b, "big", "hello all");
  await a.waitForSelector(
    '.msg.mine:has-text("hello all") .ticks.counts[aria-label="Delivered to 2 · Read by 1"]',
    {
      timeout: 15_000,
    },
  );
  await reads(c, "big", "hello all");
  await a.waitForSelector(
    '.msg.mine:has-text("hello all") .ticks.counts[aria-label="Delivered to 2 · Read by 2"]',
    {
      timeout: 15_000,
    },
  );
  assert.equal(await countsLabel(a, "hello all"), "Delivered to 2 · Read by 2");
  assert.match(
    (await a.locator('.msg.mine:has-text("hello all") .ticks').textContent()) ?? "",
    /✓✓ 2 · 2 read/,
  );
  // The others' own view of Ann's message has no counts: counts go to the sender only.
  assert.equal(await b.locator(".ticks.counts").count(), 0);
  assert.deepEqual(errors, []);
});

test("a small group keeps per-member ticks: read once its member has read, and no counts", async () => {
  const [a, b] = [await cluster!.page(), await cluster!.page()];
  const errors = pageErrors(a, b);
  await register(a, A.url, "rsann");
  await register(b, B.url, "rsben");
  await groupWith(a, "pair", ["rsben"], "hello you");
  await reads(b, "pair", "hello you");
  await a.waitForSelector('.msg.mine:has-text("hello you") .ticks.read', { timeout: 15_000 });
  assert.equal(
    await a.locator(".ticks.counts").count(),
    0,
    "a group below LARGE_CHANNEL_MEMBERS has no counts",
  );
  assert.deepEqual(errors, []);
});
