// The web client in a real browser (Chromium through playwright-core): two users chat.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import type { ChatNode } from "../../src/node.js";
import { startNode, startServices, type Services } from "../support/harness.js";
import { buildWebClient, launchChromium, register as registerOn, type WebClient } from "../support/web.js";

let services: Services;
let node: ChatNode;
let browser: Browser;
let web: WebClient;

before(async () => {
  web = await buildWebClient();
  console.log(`# ${web.report}`);
  services = await startServices();
  node = await startNode(services, { OWNED_PARTITIONS: "all", PUBLIC_DIR: web.dir });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await node?.stop();
  await services?.stop();
  await web?.remove();
});

const register = (page: Page, username: string): Promise<void> => registerOn(page, node.url, username);

test("two browsers: register, start a chat, send, receive, read ticks, unread badge", async () => {
  const a = await (await browser.newContext()).newPage();
  const b = await (await browser.newContext()).newPage();
  const errors: string[] = [];
  for (const p of [a, b]) p.on("pageerror", (e) => errors.push(e.message));
  await register(a, "webann");
  await register(b, "webben");
  await a.fill("#new-chat-user", "webben");
  await a.click('#new-chat button[type="submit"]');
  await a.waitForSelector("#composer:not([hidden])");
  await a.fill("#body", "hello from ann");
  await a.press("#body", "Enter");
  await a.waitForSelector(".msg.mine >> text=hello from ann");
  // Ben sees the chat with an unread badge, opens it, and Ann's message turns read.
  await b.waitForSelector(".channel-list li .badge >> text=1", { timeout: 15_000 });
  await b.click(".channel-list li");
  await b.waitForSelector(".msg >> text=hello from ann");
  await a.waitForSelector(".msg.mine .ticks.read", { timeout: 15_000 });
  // Typing indicator
  await b.type("#body", "hi");
  await a.waitForSelector("#chat-typing >> text=WEBBEN typing…");
  await b.press("#body", "Enter");
  await a.waitForSelector(".msg >> text=hi");
  // Presence of the peer
  await a.waitForSelector("#chat-presence >> text=online");
  // A file
  await a.setInputFiles("#file", {
    name: "note.txt",
    mimeType: "text/plain",
    buffer: Buffer.from("a small file"),
  });
  await a.waitForSelector("#attachment >> text=📎 note.txt");
  await a.press("#body", "Enter");
  await b.waitForSelector(".msg a >> text=note.txt");
  assert.deepEqual(errors, []);
});

test("WebSocket disabled in the page: the web client chats over HTTP long polling alone", async () => {
  const pages: Page[] = [];
  const transports = new Set<string>();
  const errors: string[] = [];
  for (let i = 0; i < 2; i++) {
    const ctx = await browser.newContext();
    // As behind a proxy that refuses WebSockets, or a browser without them.
    await ctx.addInitScript(() => {
      Object.defineProperty(window, "WebSocket", { value: undefined, configurable: true, writable: true });
    });
    const page = await ctx.newPage();
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("request", (r) => {
      const t = new URL(r.url()).searchParams.get("transport");
      if (r.url().includes("/socket.io/") && t) transports.add(t);
    });
    page.on("websocket", (w) => transports.add(`opened ${w.url()}`));
    pages.push(page);
  }
  const [a, b] = pages as [Page, Page];
  assert.equal(await a.evaluate(() => typeof window.WebSocket), "undefined");
  await register(a, "pollann");
  await register(b, "pollben");
  await a.fill("#new-chat-user", "pollben");
  await a.click('#new-chat button[type="submit"]');
  await a.waitForSelector("#composer:not([hidden])");
  const t0 = Date.now();
  await a.fill("#body", "hello over polling");
  await a.press("#body", "Enter");
  await b.waitForSelector(".channel-list li .badge >> text=1", { timeout: 15_000 });
  console.log(`# browser over polling: sent → peer's badge in ${Date.now() - t0} ms`);
  await b.click(".channel-list li");
  await b.waitForSelector(".msg >> text=hello over polling");
  await a.waitForSelector(".msg.mine .ticks.read", { timeout: 15_000 });
  await b.type("#body", "yo");
  await a.waitForSelector("#chat-typing >> text=POLLBEN typing…");
  await b.press("#body", "Enter");
  await a.waitForSelector(".msg >> text=yo");
  await a.waitForSelector("#chat-presence >> text=online");
  assert.deepEqual([...transports], ["polling"], "only polling requests, no WebSocket opened");
  assert.deepEqual(errors, []);
  for (const p of pages) await p.context().close();
});
