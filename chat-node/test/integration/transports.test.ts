// Transports (issue 19, item 1): a client forced to HTTP long polling and a WebSocket client chat
// across two chat-nodes on real Redis, RabbitMQ and FerretDB — 1:1 and group with acks, receipts,
// typing, presence, sync after a disconnect, reconnection with connection-state recovery, the drain's
// `reconnect` — and bad input over polling gets the same answers as over WebSocket. A client with
// the default transports starts on polling and upgrades.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import {
  DEFAULT_LIMITS,
  type Message,
  type Presence,
  type ReceiptEvent,
  type TypingEvent,
} from "@vibetalk/protocol";
import { io as connectSocket, type Socket } from "socket.io-client";
import type { ChatNode } from "../../src/node.js";
import {
  connected,
  sleep,
  startNode,
  startServices,
  TestSocket,
  TestUser,
  waitFor,
  type Services,
} from "../support/harness.js";

let services: Services;
let A: ChatNode;
let B: ChatNode;

const POLLING = { transports: ["polling"] };
const WEBSOCKET = { transports: ["websocket"] };

before(async () => {
  services = await startServices();
  const common = { RECEIPT_FLUSH_MS: "200", BINDING_GRACE_SECONDS: "1" };
  A = await startNode(services, { ...common, OWNED_PARTITIONS: "0-3" });
  B = await startNode(services, { ...common, OWNED_PARTITIONS: "4-7" });
});
after(async () => {
  await Promise.all([A, B].map((n) => n?.stop()));
  await services?.stop();
});

async function open(node: ChatNode, user: TestUser, opts: { transports: string[] }): Promise<TestSocket> {
  const s = await TestSocket.open(node.url, user.token, opts);
  user.sockets.push(s);
  return s;
}

const transportOf = (s: Socket): string => s.io.engine.transport.name;

/** A socket.io-client that reconnects by itself (recovery and drain cases). */
function reconnecting(url: string, token: string): Socket {
  return connectSocket(url, {
    auth: { token },
    transports: ["polling"],
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
  });
}

describe("transports", () => {
  test("polling stays on polling, websocket on websocket, the default starts on polling and upgrades", async () => {
    const u = await TestUser.register(A, "tr");
    const p = await open(A, u, POLLING);
    const w = await open(B, u, WEBSOCKET);
    assert.equal(transportOf(p.socket), "polling");
    assert.equal(transportOf(w.socket), "websocket");
    const d = connectSocket(A.url, { auth: { token: u.token }, forceNew: true, reconnection: false });
    try {
      await new Promise<void>((resolve, reject) => {
        d.once("connect_error", reject);
        d.io.engine?.once("upgrade", () => resolve());
        d.once("connect", () => {
          if (transportOf(d) === "websocket") resolve();
          else d.io.engine.once("upgrade", () => resolve());
        });
      });
      assert.equal(transportOf(d), "websocket", "upgraded");
      await sleep(200);
      assert.equal(transportOf(p.socket), "polling", "a polling-only client is never upgraded");
    } finally {
      d.close();
      u.closeAll();
    }
  });

  test("1:1 across nodes: send with ack, receive, receipts, typing and presence both ways", async () => {
    const pol = await TestUser.register(A, "pol");
    const ws = await TestUser.register(B, "ws");
    const ch = await pol.direct(A, ws);
    const sp = await open(A, pol, POLLING);
    const sw = await open(B, ws, WEBSOCKET);
    // Presence needs a shared channel (the direct channel above).
    const sub = await sp.emit<{ ok: boolean; presence: Presence[] }>("presence:subscribe", {
      userIds: [ws.id],
    });
    assert.equal(sub.ok, true);
    assert.deepEqual(
      sub.presence.map((p) => p.userId),
      [ws.id],
    );
    const subW = await sw.emit<{ ok: boolean; presence: Presence[] }>("presence:subscribe", {
      userIds: [pol.id],
    });
    assert.deepEqual(
      subW.presence.map((p) => p.userId),
      [pol.id],
    );

    const t0 = Date.now();
    const r1 = await sp.send(ch.id, "from polling");
    const ackPolling = Date.now() - t0;
    assert.equal(r1.ok, true);
    const [m1] = await sw.waitMessages(ch.id, 1);
    assert.equal(m1?.body, "from polling");
    const t1 = Date.now();
    const r2 = await sw.send(ch.id, "from websocket");
    const ackWs = Date.now() - t1;
    assert.equal(r2.ok, true);
    const got = await sp.waitMessages(ch.id, 2);
    assert.deepEqual(
      got.map((m) => [m.seq, m.body]),
      [
        [1, "from polling"],
        [2, "from websocket"],
      ],
    );
    console.log(`# send ack: polling ${ackPolling} ms, websocket ${ackWs} ms`);

    // Receipts: each way.
    assert.deepEqual(await sp.emit("receipt", { channelId: ch.id, seq: 2, kind: "read" }), { ok: true });
    await sw.waitEvent<ReceiptEvent>(
      "receipt",
      (r) => r.userId === pol.id && r.kind === "read" && r.seq === 2,
    );
    assert.deepEqual(await sw.emit("receipt", { channelId: ch.id, seq: 1, kind: "delivered" }), { ok: true });
    await sp.waitEvent<ReceiptEvent>("receipt", (r) => r.userId === ws.id && r.kind === "delivered");

    // Typing: each way.
    assert.deepEqual(await sp.emit("typing", { channelId: ch.id, typing: true }), { ok: true });
    await sw.waitEvent<TypingEvent>("typing", (t) => t.userId === pol.id && t.typing);
    assert.deepEqual(await sw.emit("typing", { channelId: ch.id, typing: true }), { ok: true });
    await sp.waitEvent<TypingEvent>("typing", (t) => t.userId === ws.id && t.typing);

    // Presence: the WebSocket user leaves (offline at the polling user), the polling user leaves too.
    sw.close();
    await sp.waitEvent<Presence>("presence", (p) => p.userId === ws.id && !p.online, 15_000);
    const sw2 = await open(B, ws, WEBSOCKET);
    await sp.waitEvent<Presence>("presence", (p) => p.userId === ws.id && p.online, 15_000);
    await sw2.emit("presence:subscribe", { userIds: [pol.id] });
    sp.close();
    await sw2.waitEvent<Presence>("presence", (p) => p.userId === pol.id && !p.online, 15_000);
    pol.closeAll();
    ws.closeAll();
  });

  test("group across nodes and transports: every member once", async () => {
    const users = await Promise.all([A, B, A, B].map((n) => TestUser.register(n, "trg")));
    const [owner, ...rest] = users as [TestUser, ...TestUser[]];
    const ch = await owner.group(A, "mixed", rest);
    const socks = await Promise.all(users.map((u, i) => open(i % 2 ? B : A, u, i < 2 ? POLLING : WEBSOCKET)));
    assert.equal((await socks[0]?.send(ch.id, "to all from polling"))?.ok, true);
    assert.equal((await socks[3]?.send(ch.id, "to all from websocket"))?.ok, true);
    for (const s of socks) {
      const ms = await s.waitMessages(ch.id, 2);
      assert.deepEqual(ms.map((m) => m.body).sort(), ["to all from polling", "to all from websocket"]);
    }
    await sleep(300);
    for (const s of socks) assert.equal(s.messages(ch.id).length, 2, "no duplicates");
    for (const u of users) u.closeAll();
  });

  test("sync after a disconnect, over polling", async () => {
    const pol = await TestUser.register(A, "pols");
    const ws = await TestUser.register(B, "wss");
    const ch = await pol.direct(A, ws);
    const sp = await open(A, pol, POLLING);
    const sw = await open(B, ws, WEBSOCKET);
    await sw.send(ch.id, "seen");
    await sp.waitMessages(ch.id, 1);
    sp.close();
    for (let i = 0; i < 3; i++) await sw.send(ch.id, `missed ${i}`);
    const again = await open(B, pol, POLLING);
    const r = await again.emit<{ ok: boolean; messages: Message[] }>("sync", {
      channels: [{ channelId: ch.id, afterSeq: 1 }],
    });
    assert.equal(r.ok, true);
    assert.deepEqual(
      r.messages.map((m) => m.body),
      ["missed 0", "missed 1", "missed 2"],
    );
    pol.closeAll();
    ws.closeAll();
  });

  test("reconnection with state recovery over polling: same id and rooms, missed broadcasts replayed, messages by sync", async () => {
    const pol = await TestUser.register(A, "polr");
    const ws = await TestUser.register(B, "wsr");
    const ch = await pol.direct(A, ws);
    const sw = await open(B, ws, WEBSOCKET);
    const s = connectSocket(A.url, {
      auth: { token: pol.token },
      transports: ["polling"],
      forceNew: true,
      reconnection: false,
    });
    const typing: boolean[] = [];
    s.on("typing", (t: TypingEvent) => typing.push(t.typing));
    try {
      await connected(s);
      const firstId = s.id;
      await sw.send(ch.id, "before the drop");
      // A broadcast through the adapter gives the client its recovery offset.
      await sw.emit("typing", { channelId: ch.id, typing: true });
      await waitFor("the first typing event", () => typing.length === 1);
      // The polling connection drops (as when a network goes away).
      const gone = new Promise<void>((r) => s.once("disconnect", () => r()));
      s.io.engine.close();
      await gone;
      await sw.send(ch.id, "while away");
      await sw.emit("typing", { channelId: ch.id, typing: false });
      await sleep(300);
      const back = connected(s);
      s.connect();
      await back;
      assert.equal(s.recovered, true, "the session was recovered");
      assert.equal(s.id, firstId, "same socket id");
      assert.equal(transportOf(s), "polling");
      await waitFor("the missed typing event, replayed", () => typing.length === 2);
      assert.deepEqual(typing, [true, false]);
      // Chat messages are delivered node-locally (no recovery offset): sync covers the gap.
      const r = (await s
        .timeout(5000)
        .emitWithAck("sync", { channels: [{ channelId: ch.id, afterSeq: 1 }] })) as {
        ok: boolean;
        messages: Message[];
      };
      assert.deepEqual(
        r.messages.map((m) => m.body),
        ["while away"],
      );
    } finally {
      s.close();
      ws.closeAll();
    }
  });

  test("a draining node sends its polling clients a reconnect event, and they reconnect elsewhere", async () => {
    const C = await startNode(services, { DRAIN_SECONDS: "4" });
    const pol = await TestUser.register(A, "pold");
    const s = reconnecting(C.url, pol.token);
    const reasons: unknown[] = [];
    s.on("reconnect", (e: unknown) => {
      reasons.push(e);
      s.close();
    });
    try {
      await connected(s);
      assert.equal(C.connections(), 1);
      await C.stop();
      await waitFor("the reconnect event", () => reasons.length > 0);
      assert.deepEqual(reasons[0], { reason: "draining" });
      // The client follows it to another node, still on polling.
      const back = await TestSocket.open(A.url, pol.token, POLLING);
      assert.equal(transportOf(back.socket), "polling");
      back.close();
    } finally {
      s.close();
      await C.stop();
    }
  });
});

describe("bad input over polling answers as over WebSocket", () => {
  test("schema, size, membership and rate limits: the same codes on both transports", async () => {
    const ann = await TestUser.register(A, "bad");
    const ben = await TestUser.register(B, "bad");
    const eve = await TestUser.register(B, "bad");
    const ch = await ann.direct(A, ben);
    const other = await ben.direct(B, eve);
    const cases: Array<[string, string, unknown, string]> = [
      ["no body", "message:send", { channelId: ch.id, clientMsgId: randomUUID() }, "INVALID_ARGUMENT"],
      [
        "a numeric channelId",
        "message:send",
        { channelId: 42, clientMsgId: "m1", body: "x" },
        "INVALID_ARGUMENT",
      ],
      [
        "a body one byte over the limit",
        "message:send",
        { channelId: ch.id, clientMsgId: randomUUID(), body: "b".repeat(DEFAULT_LIMITS.maxBodyBytes + 1) },
        "PAYLOAD_TOO_LARGE",
      ],
      [
        "NUL in the body",
        "message:send",
        { channelId: ch.id, clientMsgId: randomUUID(), body: "a\u0000b" },
        "INVALID_ARGUMENT",
      ],
      [
        "a channel of two others",
        "message:send",
        { channelId: other.id, clientMsgId: randomUUID(), body: "x" },
        "FORBIDDEN",
      ],
      [
        "a receipt with a negative seq",
        "receipt",
        { channelId: ch.id, seq: -1, kind: "read" },
        "INVALID_ARGUMENT",
      ],
      ["typing in a channel of two others", "typing", { channelId: other.id, typing: true }, "FORBIDDEN"],
      ["presence of a stranger", "presence:subscribe", { userIds: [eve.id] }, "FORBIDDEN"],
    ];
    const answers: Record<string, string[]> = {};
    for (const [name, opts] of [
      ["polling", POLLING],
      ["websocket", WEBSOCKET],
    ] as const) {
      const s = await open(A, ann, opts);
      answers[name] = [];
      for (const [, event, payload] of cases) {
        const r = await s.emit<{ ok: boolean; error?: { code: string } }>(event, payload);
        answers[name]?.push(r.ok ? "ok" : (r.error?.code ?? "?"));
      }
      // A send without an ack callback is refused without an answer, and the socket stays usable.
      s.socket.emit("message:send", { channelId: ch.id, clientMsgId: randomUUID(), body: "no ack" });
      assert.equal((await s.send(ch.id, `still fine on ${name}`)).ok, true);
      // The send rate limit (burst then RATE_LIMITED).
      const burst = await Promise.all(
        Array.from({ length: DEFAULT_LIMITS.sendBurst + 5 }, (_, i) => s.send(ch.id, `burst ${i}`)),
      );
      answers[name]?.push(
        burst.some((r) => !r.ok && r.error?.code === "RATE_LIMITED") ? "RATE_LIMITED" : "none",
      );
      s.close();
    }
    assert.deepEqual(answers["polling"], [...cases.map((c) => c[3]), "RATE_LIMITED"]);
    assert.deepEqual(answers["websocket"], answers["polling"]);
    // A bad token at the handshake: the same connect_error code.
    for (const opts of [POLLING, WEBSOCKET]) {
      await assert.rejects(
        TestSocket.open(A.url, "not-a-token", opts),
        (err: Error & { data?: { code?: string } }) => {
          assert.equal(err.data?.code, "UNAUTHENTICATED");
          return true;
        },
      );
    }
    // A polling POST over the engine's buffer limit is refused by HTTP 413 and the node still serves.
    const big = await fetch(`${A.url}/socket.io/?EIO=4&transport=polling`);
    const sid = /"sid":"([^"]+)"/.exec(await big.text())?.[1];
    assert.ok(sid);
    const r = await fetch(`${A.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
      method: "POST",
      headers: { "content-type": "text/plain;charset=UTF-8" },
      body: "4" + "x".repeat(Math.max(64 * 1024, DEFAULT_LIMITS.maxBodyBytes * 8) + 10),
    });
    assert.equal(r.status, 413);
    assert.equal((await (await open(A, ann, POLLING)).send(ch.id, "after 413")).ok, true);
    ann.closeAll();
  });
});
