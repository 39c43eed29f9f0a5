// Screenshots of the web client for docs/chat-node.md: two users on one chat-node (the test harness's
// real Redis, RabbitMQ and FerretDB), a direct chat, a group and a conversation in it (an edit, a
// mention, a reply, reactions), at a desktop's and a phone's width.
//
//   node --import tsx scripts/web-screens.ts [out folder, default docs/screens]
//
// Everything it starts (services, node, browser, the built client) is stopped and removed at the end.
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { startNode, startServices } from "../chat-node/test/support/harness.js";
import { buildWebClient, launchChromium, register } from "../chat-node/test/support/web.js";

const out = resolve(process.argv[2] ?? "docs/screens");
const web = await buildWebClient();
const services = await startServices();
const node = await startNode(services, { OWNED_PARTITIONS: "all", PUBLIC_DIR: web.dir });
let browser: Browser | undefined;
try {
  await mkdir(out, { recursive: true });
  browser = await launchChromium();
  const desk = { viewport: { width: 1100, height: 640 } };
  const phone = {
    viewport: { width: 360, height: 740 },
    isMobile: true,
    hasTouch: true,
    deviceScaleFactor: 2,
  };
  const a = await (await browser.newContext(desk)).newPage();
  const b = await (await browser.newContext(phone)).newPage();
  await register(a, node.url, "ann");
  await register(b, node.url, "ben");
  const send = async (p: Page, text: string): Promise<void> => {
    await p.fill("#body", text);
    await p.press("#body", "Enter");
    await p.waitForSelector(`.msg >> text=${text}`);
  };
  await a.fill("#new-chat-user", "be");
  await a.waitForSelector("#user-results [role=option]");
  await a.screenshot({ path: `${out}/desktop-search.png` });
  await a.press("#new-chat-user", "ArrowDown");
  await a.press("#new-chat-user", "Enter");
  await a.waitForSelector("#composer:not([hidden])");
  await send(a, "Hi Ben! Are we still on for Friday?");
  await b.click(".channel-list button.open >> text=ANN");
  await send(b, "Yes! 7 pm at the usual place");
  await send(a, "Great, see you there");
  await a.waitForSelector(".msg.mine .ticks.read");
  await a.screenshot({ path: `${out}/desktop-chat.png` });
  await b.screenshot({ path: `${out}/phone-chat.png` });
  await a.fill("#new-group-name", "Friday dinner");
  await a.fill("#new-group-members", "ben");
  await a.click('#new-group button[type="submit"]');
  await a.waitForSelector("#chat-title >> text=Friday dinner");
  await send(a, "Making a group for the booking");
  await a.click("#group-info");
  await a.waitForSelector("#group-panel [data-user=ben]");
  await a.screenshot({ path: `${out}/desktop-group.png` });
  await b.click("#back");
  await b.waitForSelector(".channel-list >> text=Friday dinner");
  await b.screenshot({ path: `${out}/phone-list.png` });
  // A conversation: an edit, a mention, a reply with its quote, reactions (docs/protocol.md, "Conversations").
  const menuItem = async (p: Page, text: string, name: string): Promise<void> => {
    const msg = p.locator("#messages .msg", { hasText: text }).first();
    await msg.getByRole("button", { name: "message actions" }).click();
    await msg.getByRole("menuitem", { name }).click();
  };
  await a.click("#group-close");
  await menuItem(a, "Making a group for the booking", "edit");
  await a.fill(".edit-box", "Making a group for Friday's booking");
  await a.press(".edit-box", "Enter");
  await a.waitForSelector(".msg .edited");
  await send(a, "Table for 4 at 7? @ben can you call them");
  await b.click(".channel-list button.open >> text=Friday dinner");
  await menuItem(b, "can you call them", "reply");
  await send(b, "Called: it is booked");
  await menuItem(b, "can you call them", "react 👍");
  await menuItem(a, "it is booked", "react 🎉");
  await menuItem(a, "Friday's booking", "react ❤️");
  await a.waitForSelector(".msg .quote");
  await a.waitForSelector(".msg .reaction >> text=👍 1");
  await b.waitForSelector(".msg .reaction >> text=🎉 1");
  await a.screenshot({ path: `${out}/desktop-conversation.png` });
  await b.screenshot({ path: `${out}/phone-conversation.png` });
  console.log(`screenshots in ${out}`);
} finally {
  await browser?.close();
  await node.stop();
  await services.stop();
  await web.remove();
}
