// Product behaviour across three chat-nodes sharing real Redis, RabbitMQ and FerretDB.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type {
  Channel,
  ChannelDetailsReply,
  ChannelEvent,
  ChannelsReply,
  FileInfo,
  Message,
  Presence,
  ReceiptEvent,
  TypingEvent,
} from "@vibetalk/protocol";
import type { ChatNode } from "../../src/node.js";
import {
  http,
  sleep,
  startNode,
  startServices,
  TestUser,
  waitFor,
  type Services,
} from "../support/harness.js";
import { buildWebClient, type WebClient } from "../support/web.js";

let services: Services;
let A: ChatNode;
let B: ChatNode;
let C: ChatNode;
/** The web client as the image serves it (a build output: test/support/web.ts builds it). */
let web: WebClient;

before(async () => {
  web = await buildWebClient();
  services = await startServices();
  // Partitions split between A and B; C owns none. Receipts flushed often to observe the store;
  // a small file limit; a send rate that lets one socket send a history quickly.
  const common = {
    RECEIPT_FLUSH_MS: "200",
    LIMIT_MAX_FILE_BYTES: String(256 * 1024),
    LIMIT_SEND_RATE: "500",
    LIMIT_SEND_BURST: "500",
  };
  A = await startNode(services, { ...common, OWNED_PARTITIONS: "0-3", PUBLIC_DIR: web.dir });
  B = await startNode(services, { ...common, OWNED_PARTITIONS: "4-7" });
  C = await startNode(services, { ...common, BINDING_GRACE_SECONDS: "1" });
});
after(async () => {
  await Promise.all([A, B, C].map((n) => n?.stop()));
  await services?.stop();
  await web?.remove();
});

describe("delivery", () => {
  test("1:1 across nodes, both ways, in seq order", async () => {
    const ann = await TestUser.register(A);
    const ben = await TestUser.register(B);
    const ch = await ann.direct(A, ben);
    const again = await ben.direct(C, ann);
    assert.equal(again.id, ch.id, "the direct channel of a pair is unique");
    const sa = await ann.connect(A);
    const sb = await ben.connect(C);
    for (let i = 0; i < 5; i++) assert.equal((await sa.send(ch.id, `a${i}`)).ok, true);
    for (let i = 0; i < 5; i++) assert.equal((await sb.send(ch.id, `b${i}`)).ok, true);
    const got = await sb.waitMessages(ch.id, 10);
    assert.deepEqual(
      got.map((m) => m.seq),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert.deepEqual(
      got.map((m) => m.body),
      ["a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2", "b3", "b4"],
    );
    const own = await sa.waitMessages(ch.id, 10);
    assert.deepEqual(
      own.map((m) => m.id),
      got.map((m) => m.id),
    );
    assert.equal(got[0]?.senderId, ann.id);
    assert.equal(got[0]?.id, `${ch.id}:000000000001`);
    ann.closeAll();
    ben.closeAll();
  });

  test("group across three nodes, every member once", async () => {
    const users = await Promise.all([A, B, C, A, B, C].map((n) => TestUser.register(n, "grp")));
    const [owner, ...rest] = users as [TestUser, ...TestUser[]];
    const ch = await owner.group(A, "team", rest);
    assert.equal(ch.memberCount, 6);
    const socks = await Promise.all(users.map((u, i) => u.connect([A, B, C][i % 3] as ChatNode)));
    const r = await socks[3]?.send(ch.id, "hello team");
    assert.equal(r?.ok, true);
    for (const s of socks) {
      const [m] = await s.waitMessages(ch.id, 1);
      assert.equal(m?.body, "hello team");
    }
    await sleep(300);
    for (const s of socks) assert.equal(s.messages(ch.id).length, 1, "no duplicates");
    for (const u of users) u.closeAll();
  });

  test("multi-device and multi-tab: every socket of every member, the sender's other devices included", async () => {
    const ann = await TestUser.register(A);
    const ben = await TestUser.register(B);
    const ch = await ann.direct(A, ben);
    const annPhone = await ann.connect(A);
    const annTab1 = await ann.connect(B);
    const annTab2 = await ann.connect(B);
    const benPhone = await ben.connect(C);
    const benLaptop = await ben.connect(A);
    await annPhone.send(ch.id, "from the phone");
    for (const s of [annPhone, annTab1, annTab2, benPhone, benLaptop]) {
      const [m] = await s.waitMessages(ch.id, 1);
      assert.equal(m?.body, "from the phone");
    }
    // One tab closes; the others still receive.
    annTab1.close();
    await sleep(100);
    await benLaptop.send(ch.id, "reply");
    for (const s of [annPhone, annTab2, benPhone, benLaptop]) await s.waitMessages(ch.id, 2);
    ann.closeAll();
    ben.closeAll();
  });

  test("an offline member gets the gap by sync and by history", async () => {
    const ann = await TestUser.register(A);
    const ben = await TestUser.register(B);
    const ch = await ann.direct(A, ben);
    const sa = await ann.connect(A);
    for (let i = 0; i < 3; i++) await sa.send(ch.id, `m${i}`);
    await sa.waitMessages(ch.id, 3);
    const sb = await ben.connect(C);
    const r = await sb.emit<{ ok: boolean; messages: Message[]; more: string[] }>("sync", {
      channels: [{ channelId: ch.id, afterSeq: 1 }],
    });
    assert.equal(r.ok, true);
    assert.deepEqual(
      r.messages.map((m) => m.seq),
      [2, 3],
    );
    assert.deepEqual(r.more, []);
    ann.closeAll();
    ben.closeAll();
  });
});

describe("receipts and unread", () => {
  test("read marks travel to the other members and drive unread counts", async () => {
    const ann = await TestUser.register(A);
    const ben = await TestUser.register(B);
    const ch = await ann.direct(A, ben);
    const sa = await ann.connect(A);
    const sb = await ben.connect(C);
    for (let i = 0; i < 4; i++) await sa.send(ch.id, `m${i}`);
    await sb.waitMessages(ch.id, 4);
    const list = async (u: TestUser, n: ChatNode) =>
      (await u.api<ChannelsReply>(n, "GET", "/channels")).body.channels.find((c) => c.id === ch.id);
    await waitFor("lastSeq 4", async () => (await list(ben, B))?.lastSeq === 4);
    assert.equal((await list(ben, B))?.unread, 4);
    assert.equal((await list(ann, A))?.unread, 4, "own messages count until read; clients mark them read");
    assert.deepEqual(await sb.emit("receipt", { channelId: ch.id, seq: 4, kind: "delivered" }), { ok: true });
    const d = await sa.waitEvent<ReceiptEvent>(
      "receipt",
      (r) => r.kind === "delivered" && r.userId === ben.id,
    );
    assert.equal(d.seq, 4);
    assert.deepEqual(await sb.emit("receipt", { channelId: ch.id, seq: 3, kind: "read" }), { ok: true });
    await sa.waitEvent<ReceiptEvent>("receipt", (r) => r.kind === "read" && r.seq === 3);
    // Lower marks are accepted and ignored.
    assert.deepEqual(await sb.emit("receipt", { channelId: ch.id, seq: 1, kind: "read" }), { ok: true });
    // Another node sees the stored mark once it is flushed (≤ 1 flush interval).
    await waitFor("unread 1 on another node", async () => (await list(ben, A))?.unread === 1);
    const details = (await ann.api<ChannelDetailsReply>(A, "GET", `/channels/${ch.id}`)).body;
    const benMember = details.members.find((m) => m.userId === ben.id);
    assert.equal(benMember?.lastReadSeq, 3);
    assert.equal(benMember?.lastDeliveredSeq, 4);
    ann.closeAll();
    ben.closeAll();
  });
});

describe("presence and typing", () => {
  test("presence: online on connect, offline with lastSeenAt when the last socket goes", async () => {
    const ann = await TestUser.register(A);
    const ben = await TestUser.register(B);
    await ann.direct(A, ben); // presence is shared between users who share a channel
    const sa = await ann.connect(A);
    const first = await sa.emit<{ ok: boolean; presence: Presence[] }>("presence:subscribe", {
      userIds: [ben.id],
    });
    assert.deepEqual(first.presence, [{ userId: ben.id, online: false, lastSeenAt: null }]);
    const sb1 = await ben.connect(C);
    await sa.waitEvent<Presence>("presence", (p) => p.userId === ben.id && p.online);
    const sb2 = await ben.connect(B);
    sb1.close();
    await sleep(300);
    assert.equal(
      sa.of<Presence>("presence").filter((p) => !p.online).length,
      0,
      "still online on another node",
    );
    sb2.close();
    const off = await sa.waitEvent<Presence>("presence", (p) => p.userId === ben.id && !p.online);
    assert.ok(off.lastSeenAt && Date.now() - Date.parse(off.lastSeenAt) < 10_000);
    const now = await sa.emit<{ ok: boolean; presence: Presence[] }>("presence:subscribe", {
      userIds: [ben.id],
    });
    assert.equal(now.presence[0]?.online, false);
    assert.equal(now.presence[0]?.lastSeenAt, off.lastSeenAt);
    ann.closeAll();
  });

  test("typing reaches the other members on other nodes, not the typist", async () => {
    const [ann, ben, cid] = await Promise.all([
      TestUser.register(A),
      TestUser.register(B),
      TestUser.register(C),
    ]);
    const ch = await ann.group(A, "typing", [ben, cid]);
    const sa = await ann.connect(A);
    const sa2 = await ann.connect(C);
    const sb = await ben.connect(B);
    const sc = await cid.connect(C);
    assert.deepEqual(await sa.emit("typing", { channelId: ch.id, typing: true }), { ok: true });
    for (const s of [sb, sc]) {
      const t = await s.waitEvent<TypingEvent>("typing");
      assert.deepEqual(t, { channelId: ch.id, userId: ann.id, typing: true });
    }
    await sleep(200);
    assert.equal(sa2.of("typing").length, 0);
    const outsider = await TestUser.register(A);
    const so = await outsider.connect(A);
    const r = await so.emit<{ ok: boolean; error?: { code: string } }>("typing", {
      channelId: ch.id,
      typing: true,
    });
    assert.equal(r.error?.code, "FORBIDDEN");
    for (const u of [ann, ben, cid, outsider]) u.closeAll();
  });
});

describe("files", () => {
  test("upload, reference from a message, download by members only, limits", async () => {
    const ann = await TestUser.register(A);
    const ben = await TestUser.register(B);
    const eve = await TestUser.register(C);
    const ch = await ann.direct(A, ben);
    const content = randomBytes(100_000);
    const form = new FormData();
    form.append("file", new Blob([content], { type: "image/png" }), "pic.png");
    const up = await http<{ file: FileInfo }>(A.url, "POST", `/api/v1/files?channelId=${ch.id}`, {
      token: ann.token,
      raw: form,
    });
    assert.equal(up.status, 201, JSON.stringify(up.body));
    assert.equal(up.body.file.size, content.length);
    const sa = await ann.connect(A);
    const sb = await ben.connect(B);
    assert.equal(
      (
        await sa.emit<{ ok: boolean }>("message:send", {
          channelId: ch.id,
          clientMsgId: "f1",
          body: "",
          fileIds: [up.body.file.id],
        })
      ).ok,
      true,
    );
    const [m] = await sb.waitMessages(ch.id, 1);
    assert.deepEqual(m?.fileIds, [up.body.file.id]);
    const dl = await fetch(`${C.url}/api/v1/files/${up.body.file.id}`, {
      headers: { authorization: `Bearer ${ben.token}` },
    });
    assert.equal(dl.status, 200);
    assert.equal(dl.headers.get("content-type"), "image/png");
    assert.ok(Buffer.from(await dl.arrayBuffer()).equals(content));
    const denied = await http(C.url, "GET", `/api/v1/files/${up.body.file.id}`, { token: eve.token });
    assert.equal(denied.status, 403);
    // Someone else's file cannot be attached.
    const sbSend = await sb.emit<{ ok: boolean; error?: { code: string } }>("message:send", {
      channelId: ch.id,
      clientMsgId: "f2",
      body: "x",
      fileIds: [up.body.file.id],
    });
    assert.equal(sbSend.error?.code, "INVALID_ARGUMENT");
    // Too large (this test's nodes allow 256 KiB) and a type outside the allow-list.
    const big = new FormData();
    big.append("file", new Blob([randomBytes(300 * 1024)], { type: "image/png" }), "big.png");
    const tooBig = await http<{ error: { code: string } }>(
      A.url,
      "POST",
      `/api/v1/files?channelId=${ch.id}`,
      { token: ann.token, raw: big },
    );
    assert.equal(tooBig.status, 413);
    assert.equal(tooBig.body.error.code, "PAYLOAD_TOO_LARGE");
    const exe = new FormData();
    exe.append("file", new Blob([Buffer.from("MZ")], { type: "application/x-msdownload" }), "x.exe");
    const badType = await http<{ error: { code: string } }>(
      A.url,
      "POST",
      `/api/v1/files?channelId=${ch.id}`,
      { token: ann.token, raw: exe },
    );
    assert.equal(badType.body.error.code, "INVALID_ARGUMENT");
    const notMember = new FormData();
    notMember.append("file", new Blob([Buffer.from("hi")], { type: "text/plain" }), "a.txt");
    const nm = await http<{ error: { code: string } }>(A.url, "POST", `/api/v1/files?channelId=${ch.id}`, {
      token: eve.token,
      raw: notMember,
    });
    assert.equal(nm.status, 403);
    ann.closeAll();
    ben.closeAll();
  });
});

describe("history and lists", () => {
  test("history pages by beforeSeq / afterSeq; sync reports more", async () => {
    const ann = await TestUser.register(A);
    const ben = await TestUser.register(B);
    const ch = await ann.direct(A, ben);
    const sa = await ann.connect(A);
    const N = 130;
    await Promise.all(
      Array.from({ length: N }, (_, i) => sa.send(ch.id, `m${i}`, `c${String(i).padStart(4, "0")}`)),
    );
    await sa.waitMessages(ch.id, N, 30_000);
    const page = async (q: string) =>
      (
        await ann.api<{ messages: Message[] }>(C, "GET", `/channels/${ch.id}/messages?${q}`)
      ).body.messages.map((m) => m.seq);
    const newest = await page("limit=50");
    assert.deepEqual(
      newest,
      Array.from({ length: 50 }, (_, i) => 81 + i),
    );
    assert.deepEqual(
      await page("beforeSeq=81&limit=50"),
      Array.from({ length: 50 }, (_, i) => 31 + i),
    );
    assert.deepEqual(
      await page("beforeSeq=31&limit=50"),
      Array.from({ length: 30 }, (_, i) => 1 + i),
    );
    assert.deepEqual(await page("afterSeq=120"), [121, 122, 123, 124, 125, 126, 127, 128, 129, 130]);
    assert.deepEqual(await page("afterSeq=10&beforeSeq=14"), [11, 12, 13]);
    const all = await page("afterSeq=0&limit=100");
    assert.equal(all.length, 100);
    const sb = await ben.connect(B);
    const s = await sb.emit<{ ok: boolean; messages: Message[]; more: string[] }>("sync", {
      channels: [{ channelId: ch.id, afterSeq: 0 }],
    });
    assert.equal(s.messages.length, 100);
    assert.deepEqual(s.more, [ch.id]);
    ann.closeAll();
    ben.closeAll();
  });

  test("the recent-chats list: newest activity first, previews, paging", async () => {
    const me = await TestUser.register(A);
    const peers = await Promise.all([0, 1, 2, 3, 4].map(() => TestUser.register(B)));
    const chans: Channel[] = [];
    for (const p of peers) chans.push(await me.direct(A, p));
    const s = await me.connect(A);
    // Activity order: 2, 0, 4 (most recent last); 1 and 3 stay silent.
    for (const i of [2, 0, 4]) {
      await s.send((chans[i] as Channel).id, `hello ${i}`);
      await s.waitMessages((chans[i] as Channel).id, 1);
      await sleep(20);
    }
    await waitFor("previews stored", async () => {
      const r = await me.api<ChannelsReply>(C, "GET", "/channels");
      return r.body.channels.filter((c) => c.lastMessage).length === 3;
    });
    const first = await me.api<ChannelsReply>(C, "GET", "/channels?limit=2");
    const ids = (xs: { id: string }[]) => xs.map((c) => c.id);
    assert.deepEqual(ids(first.body.channels), ids([chans[4], chans[0]] as Channel[]));
    assert.equal(first.body.channels[0]?.lastMessage?.body, "hello 4");
    assert.equal(first.body.channels[0]?.peer?.id, peers[4]?.id);
    assert.ok(first.body.nextCursor);
    const second = await me.api<ChannelsReply>(C, "GET", `/channels?limit=2&cursor=${first.body.nextCursor}`);
    assert.equal(second.body.channels[0]?.id, chans[2]?.id);
    const third = await me.api<ChannelsReply>(C, "GET", `/channels?limit=2&cursor=${second.body.nextCursor}`);
    assert.deepEqual(
      new Set(ids([...second.body.channels.slice(1), ...third.body.channels])),
      new Set(ids([chans[1], chans[3]] as Channel[])),
    );
    assert.equal(third.body.nextCursor, null);
    me.closeAll();
  });
});

describe("channel management", () => {
  test("rename, add, roles, remove, leave — with channel events and permission checks", async () => {
    const [own, adm, mem, late] = await Promise.all([
      TestUser.register(A),
      TestUser.register(B),
      TestUser.register(C),
      TestUser.register(A),
    ]);
    const ch = await own.group(A, "club", [adm, mem]);
    const so = await own.connect(A);
    const sm = await mem.connect(C);
    const sl = await late.connect(B);
    assert.equal((await mem.api(B, "PATCH", `/channels/${ch.id}`, { name: "mine" })).status, 403);
    assert.equal(
      (
        await own.api(B, "PATCH", `/channels/${adm.id.slice(0, 0)}${ch.id}/members/${adm.id}`, {
          role: "admin",
        })
      ).status,
      200,
    );
    const renamed = await adm.api<{ channel: Channel }>(B, "PATCH", `/channels/${ch.id}`, { name: "club 2" });
    assert.equal(renamed.body.channel.name, "club 2");
    await sm.waitEvent<ChannelEvent>("channel", (e) => e.change === "renamed" && e.channel.name === "club 2");
    const added = await adm.api<ChannelDetailsReply>(C, "POST", `/channels/${ch.id}/members`, {
      userIds: [late.id],
    });
    assert.equal(added.status, 200);
    assert.equal(added.body.members.length, 4);
    await sl.waitEvent<ChannelEvent>("channel", (e) => e.channel.id === ch.id);
    // The new member receives messages right away (caches invalidated cluster-wide).
    await so.send(ch.id, "welcome");
    await sl.waitMessages(ch.id, 1);
    // An admin cannot remove another admin; a member cannot remove anyone.
    assert.equal((await mem.api(A, "DELETE", `/channels/${ch.id}/members/${late.id}`)).status, 403);
    assert.equal((await adm.api(A, "DELETE", `/channels/${ch.id}/members/${own.id}`)).status, 403);
    assert.equal((await adm.api(A, "DELETE", `/channels/${ch.id}/members/${mem.id}`)).status, 200);
    await sm.waitEvent<ChannelEvent>("channel", (e) => e.change === "removed");
    const r = await sm.emit<{ ok: boolean; error?: { code: string } }>("message:send", {
      channelId: ch.id,
      clientMsgId: "x",
      body: "still here?",
    });
    assert.equal(r.error?.code, "FORBIDDEN");
    assert.equal((await mem.api(A, "GET", `/channels/${ch.id}/messages`)).status, 403);
    // The owner leaves: the admin becomes owner.
    assert.equal((await own.api(B, "DELETE", `/channels/${ch.id}/members/${own.id}`)).status, 200);
    const d = await adm.api<ChannelDetailsReply>(C, "GET", `/channels/${ch.id}`);
    assert.equal(d.body.members.find((m) => m.userId === adm.id)?.role, "owner");
    assert.equal(d.body.channel.memberCount, 2);
    // Direct channels cannot be left.
    const dm = await own.direct(A, adm);
    assert.equal((await own.api(A, "DELETE", `/channels/${dm.id}/members/${own.id}`)).status, 403);
    for (const u of [own, mem, late]) u.closeAll();
  });

  test("users search and /me", async () => {
    const u = await TestUser.register(A, "searchme");
    const me = await u.api<{ user: { id: string } }>(B, "GET", "/me");
    assert.equal(me.body.user.id, u.id);
    const found = await u.api<{ users: Array<{ id: string }> }>(C, "GET", `/users?query=${u.username}`);
    assert.deepEqual(
      found.body.users.map((x) => x.id),
      [u.id],
    );
  });
});

describe("operations", () => {
  test("health, readiness, metrics and the connection count", async () => {
    assert.deepEqual((await http(A.opsUrl, "GET", "/healthz")).body, { status: "ok" });
    const ready = await http<{ ready: boolean }>(B.opsUrl, "GET", "/readyz");
    assert.equal(ready.status, 200);
    assert.equal(ready.body.ready, true);
    const u = await TestUser.register(C);
    await u.connect(C);
    await u.connect(C);
    // Earlier tests' sockets on C close asynchronously (slowly on a loaded machine): wait for them.
    await waitFor("only this test's two sockets on C", async () => C.connections() === 2);
    assert.deepEqual((await http(C.opsUrl, "GET", "/internal/connections")).body, { connections: 2 });
    const metrics = (await http<string>(C.opsUrl, "GET", "/metrics")).body;
    for (const name of [
      "vibetalk_connections",
      "vibetalk_sockets_per_user",
      "vibetalk_messages_accepted_total",
      "vibetalk_messages_stored_total",
      "vibetalk_messages_delivered_total",
      "vibetalk_send_ack_seconds",
      "vibetalk_send_deliver_seconds",
      "vibetalk_partition_lag",
      "vibetalk_owned_partitions",
      "vibetalk_fanout_publishes_per_message",
      "vibetalk_errors_total",
    ]) {
      assert.ok(metrics.includes(name), name);
    }
    assert.match(metrics, /vibetalk_connections\{node="[^"]+"\} 2/);
    assert.match(
      await (await fetch(`${A.opsUrl}/metrics`)).text(),
      /vibetalk_owned_partitions\{node="[^"]+"\} 4/,
    );
    // The client port serves none of them (docs/security.md): only the operations port does.
    for (const path of ["/metrics", "/readyz", "/healthz", "/internal/connections"]) {
      assert.equal((await http(A.url, "GET", path)).status, 404, `client port ${path}`);
    }
    const html = await fetch(`${A.url}/`);
    assert.match(await html.text(), /VibeTalk/);
    const client = await fetch(`${A.url}/socket.io/socket.io.js`);
    assert.equal(client.status, 200);
    u.closeAll();
  });
});
