// Conversation features of the web client in Chromium, two users on two chat-nodes (A owns
// partitions 0-3, B 4-7): the message menu, edit, delete, replies, reactions, mentions and the
// chat list's mention badge and mute (docs/protocol.md, "Conversations"; docs/chat-node.md, "The web
// client"). A third node with a 1 s edit window shows a refusal. The client is bundled once.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Locator, Page } from "playwright-core";
import type { ChatNode } from "../../src/node.js";
import { io as connectSocket } from "socket.io-client";
import { connected, startNode, type Services } from "../support/harness.js";
import { pageErrors, register, startWebCluster, type WebClient, type WebCluster } from "../support/web.js";

let services: Services;
let A: ChatNode;
let B: ChatNode;
let web: WebClient;
let cluster: WebCluster | undefined;
const LIVE = { timeout: 15_000 };

before(async () => {
  cluster = await startWebCluster();
  ({ services, A, B, web } = cluster);
});
after(() => cluster?.stop());

const page = (opts: Parameters<Browser["newContext"]>[0] = {}): Promise<Page> => cluster!.page(opts);

const msg = (p: Page, text: string): Locator => p.locator("#messages .msg", { hasText: text });

/** Opens the actions menu of the message showing `text`. */
async function openMenu(p: Page, text: string): Promise<Locator> {
  await msg(p, text).getByRole("button", { name: "message actions" }).first().click();
  const menu = msg(p, text).getByRole("menu");
  await menu.waitFor();
  return menu;
}

async function send(p: Page, text: string): Promise<void> {
  await p.fill("#body", text);
  await p.press("#body", "Enter");
  await p.waitForSelector(`.msg.mine:not(.pending) >> text=${text}`, LIVE);
}

/** Ann on `nodeA`'s page and Ben on B, with a direct chat both have open. */
async function directChat(prefix: string, ann: Page, ben: Page): Promise<void> {
  await ann.fill("#new-chat-user", `${prefix}ben`);
  await ann.press("#new-chat-user", "Enter");
  await ann.waitForSelector("#composer:not([hidden])");
  await send(ann, "first draft");
  await ben.click(`.channel-list button.open >> text=${prefix.toUpperCase()}ANN`, LIVE);
  await msg(ben, "first draft").waitFor(LIVE);
}

test("edit, delete, reply and reactions: made on one node, shown live on the other and after reload", async () => {
  const a = await page();
  const b = await page();
  const errors = pageErrors(a, b);
  await register(a, A.url, "cvann");
  await register(b, B.url, "cvben");
  await directChat("cv", a, b);

  // The menu from the keyboard: Enter opens it with focus inside, Escape closes it and focus returns.
  await msg(a, "first draft").getByRole("button", { name: "message actions" }).focus();
  await a.keyboard.press("Enter");
  await msg(a, "first draft").getByRole("menu").waitFor();
  assert.equal(await a.evaluate(() => document.activeElement?.getAttribute("role")), "menuitem");
  await a.keyboard.press("Escape");
  await msg(a, "first draft").getByRole("menu").waitFor({ state: "detached" });
  assert.equal(await a.evaluate(() => document.activeElement?.getAttribute("aria-label")), "message actions");
  // Ben's menu on Ann's message in a direct chat: Reply and reactions, no Edit or Delete.
  const benMenu = await openMenu(b, "first draft");
  assert.deepEqual(await benMenu.getByRole("menuitem", { name: /^(edit|delete)$/ }).count(), 0);
  assert.equal(await benMenu.getByRole("menuitem", { name: "reply" }).count(), 1);
  await b.keyboard.press("Escape");

  // Edit in place: Escape cancels, Enter saves; "(edited)" at Ann, live at Ben, and after his reload.
  await (await openMenu(a, "first draft")).getByRole("menuitem", { name: "edit" }).click();
  await a.fill(".edit-box", "never saved");
  await a.press(".edit-box", "Escape");
  await a.waitForSelector(".edit-box", { state: "detached" });
  await msg(a, "first draft").waitFor();
  await (await openMenu(a, "first draft")).getByRole("menuitem", { name: "edit" }).click();
  await a.fill(".edit-box", "final words");
  await a.press(".edit-box", "Enter");
  await msg(a, "final words").locator(".edited").waitFor(LIVE);
  await msg(b, "final words").locator(".edited").waitFor(LIVE);
  assert.equal(await msg(b, "first draft").count(), 0);
  await b.reload();
  await b.click(".channel-list button.open >> text=CVANN", LIVE);
  await msg(b, "final words").locator(".edited").waitFor(LIVE);
  assert.equal(await msg(b, "never saved").count(), 0);

  // Reply: the quote bar while replying (✕ cancels it); the reply quotes the message at both ends.
  await (await openMenu(b, "final words")).getByRole("menuitem", { name: "reply" }).click();
  await b.waitForSelector("#reply-bar:not([hidden]) >> text=final words");
  await b.click("#reply-cancel");
  await b.waitForSelector("#reply-bar", { state: "hidden" });
  await (await openMenu(b, "final words")).getByRole("menuitem", { name: "reply" }).click();
  assert.equal(await b.evaluate(() => document.activeElement?.id), "body", "focus goes to the composer");
  await send(b, "a reply to it");
  await b.waitForSelector("#reply-bar", { state: "hidden" });
  assert.equal(await msg(b, "a reply to it").locator(".quote").textContent(), "CVANNfinal words");
  await msg(a, "a reply to it").locator(".quote >> text=final words").waitFor(LIVE);

  // Reactions: Ben's 👍 shows a count at Ann with who reacted, highlighted at Ben; his click toggles it off.
  await (await openMenu(b, "final words")).getByRole("menuitem", { name: "react 👍" }).click();
  const atAnn = msg(a, "final words").locator(".reaction");
  await atAnn.waitFor(LIVE);
  assert.equal(await atAnn.textContent(), "👍 1");
  assert.equal(await atAnn.getAttribute("title"), "CVBEN");
  assert.equal(await atAnn.getAttribute("aria-pressed"), "false");
  const atBen = msg(b, "final words").locator(".reaction.mine");
  await atBen.waitFor(LIVE);
  assert.equal(await atBen.getAttribute("aria-pressed"), "true");
  await (await openMenu(a, "final words")).getByRole("menuitem", { name: "react 👍" }).click();
  await atAnn.filter({ hasText: "👍 2" }).waitFor(LIVE);
  await atBen.click();
  await msg(a, "final words").locator(".reaction >> text=👍 1").waitFor(LIVE);
  assert.equal(await msg(a, "final words").locator(".reaction").getAttribute("title"), "CVANN");

  // Delete: Ann's message becomes a tombstone at Ben; its text is gone; the reply's quote says so.
  await send(a, "oops wrong chat");
  await msg(b, "oops wrong chat").waitFor(LIVE);
  await (await openMenu(a, "oops wrong chat")).getByRole("menuitem", { name: "delete" }).click();
  await b.locator("#messages .msg.deleted >> text=message deleted").waitFor(LIVE);
  await msg(b, "oops wrong chat").waitFor({ state: "detached", ...LIVE });
  assert.deepEqual(errors, []);
});

test("mentions: suggestions from the keyboard, highlighted, a badge until read; mute; an admin deletes others' messages", async () => {
  const a = await page();
  const b = await page();
  const errors = pageErrors(a, b);
  await register(a, A.url, "mnann");
  await register(b, B.url, "mnben");
  await a.fill("#new-group-name", "mentioners");
  await a.fill("#new-group-members", "mnben");
  await a.click('#new-group button[type="submit"]');
  await a.waitForSelector("#chat-title >> text=mentioners");
  await b.waitForSelector(".channel-list >> text=mentioners", LIVE);

  // "@mn" offers the members (not oneself); Tab picks the active one.
  await a.click("#body");
  await a.keyboard.type("look @mn");
  await a.waitForSelector("#mention-list [role=option] >> text=@mnben");
  assert.equal(await a.locator("#mention-list [role=option]").count(), 1);
  await a.keyboard.press("Tab");
  await a.waitForSelector("#mention-list", { state: "hidden" });
  assert.equal(await a.inputValue("#body"), "look @mnben ");
  await a.keyboard.type("here");
  await a.keyboard.press("Enter");
  await msg(a, "look @mnben here").locator(".mention:not(.me) >> text=@mnben").waitFor(LIVE);

  // Ben's chat list: "@1" live, and from the server's count after a reload, until he reads it.
  await b.waitForSelector(".channel-list .badge.mentions >> text=@1", LIVE);
  await b.reload();
  await b.waitForSelector(".channel-list .badge.mentions >> text=@1", LIVE);
  await b.click(".channel-list button.open >> text=mentioners");
  await msg(b, "look @mnben here").locator(".mention.me >> text=@mnben").waitFor(LIVE);
  await b.waitForSelector(".channel-list .badge.mentions", { state: "detached" });
  await b.reload();
  await b.waitForSelector(".channel-list >> text=mentioners", LIVE);
  assert.equal(await b.locator(".channel-list .badge.mentions").count(), 0, "read: no badge");

  // Mute: the marker in the list, kept by the server over a reload; unmute lifts it.
  await b.click(".channel-list button.open >> text=mentioners");
  await b.click("#mute");
  await b.waitForSelector("#mute >> text=unmute");
  await b.waitForSelector(".channel-list .muted");
  await b.reload();
  await b.waitForSelector(".channel-list .muted", LIVE);
  await b.click(".channel-list button.open >> text=mentioners");
  await b.waitForSelector('#mute[aria-pressed="true"] >> text=unmute');
  await b.click("#mute");
  await b.waitForSelector(".channel-list .muted", { state: "detached" });

  // The group's owner has Delete on Ben's message (no Edit); Ben sees the tombstone.
  await send(b, "from a member");
  const menu = await openMenu(a, "from a member");
  assert.equal(await menu.getByRole("menuitem", { name: "edit" }).count(), 0);
  await menu.getByRole("menuitem", { name: "delete" }).click();
  await b.locator("#messages .msg.deleted >> text=message deleted").waitFor(LIVE);
  assert.deepEqual(errors, []);
});

test("a refused edit (past a 1 s edit window) shows its error; the message stays; no page error", async () => {
  const C = await startNode(services, {
    OWNED_PARTITIONS: "none",
    PUBLIC_DIR: web.dir,
    LIMIT_EDIT_WINDOW_SECONDS: "1",
  });
  try {
    const a = await page();
    const b = await page();
    const errors = pageErrors(a, b);
    await register(a, C.url, "ewann");
    await register(b, B.url, "ewben");
    await directChat("ew", a, b);
    await new Promise((r) => setTimeout(r, 1500));
    await (await openMenu(a, "first draft")).getByRole("menuitem", { name: "edit" }).click();
    await a.fill(".edit-box", "too late");
    await a.press(".edit-box", "Enter");
    await a.waitForSelector("#chat-error >> text=EDIT_WINDOW_CLOSED", LIVE);
    await msg(a, "first draft").waitFor();
    assert.equal(await msg(a, "first draft").locator(".edited").count(), 0);
    assert.equal(await msg(b, "too late").count(), 0);
    assert.deepEqual(errors, []);
  } finally {
    await C.stop();
  }
});

test("older history pages by fromSeq: a message behind a page of reactions is reached by 'load older'", async () => {
  const a = await page();
  const b = await page();
  const errors = pageErrors(a, b);
  await register(a, A.url, "olann");
  await register(b, B.url, "olben");
  await directChat("ol", a, b);
  // 61 reaction toggles by Ann on her message (seq 1), then one more message: the newest page of 50
  // seqs holds one message only, and "first draft" is older than the page.
  const token = await a.evaluate(() => localStorage.getItem("vt.token"));
  const s = connectSocket(A.url, {
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    auth: { token },
  });
  try {
    await connected(s);
    const r = await fetch(`${A.url}/api/v1/channels`, { headers: { authorization: `Bearer ${token}` } });
    const { channels } = (await r.json()) as { channels: { id: string }[] };
    const channelId = channels[0]!.id;
    for (let i = 0; i < 61; i++) {
      const ack = (await s.emitWithAck("message:react", {
        channelId,
        clientMsgId: `old-react-${i}`,
        targetSeq: 1,
        emoji: "👍",
        on: i % 2 === 0,
      })) as { ok: boolean };
      assert.equal(ack.ok, true);
    }
    const sent = (await s.emitWithAck("message:send", {
      channelId,
      clientMsgId: "old-latest",
      body: "the latest one",
      fileIds: [],
    })) as { ok: boolean };
    assert.equal(sent.ok, true);
  } finally {
    s.close();
  }
  await b.reload();
  await b.click(".channel-list button.open >> text=OLANN", LIVE);
  await msg(b, "the latest one").waitFor(LIVE);
  assert.equal(await msg(b, "first draft").count(), 0, "the first page ends above seq 1");
  await b.click("#older:not([hidden])");
  await msg(b, "first draft").locator(".reaction >> text=👍 1").waitFor(LIVE);
  await b.waitForSelector("#older", { state: "hidden" });
  assert.deepEqual(errors, []);
});
