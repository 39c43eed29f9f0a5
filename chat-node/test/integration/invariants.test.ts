// Invariants I2, I3, I5 and I7 (docs/architecture.md#invariants) on three chat-nodes with real services.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import type { Message, MessageSendReply } from "@vibetalk/protocol";
import { userExchangeOf } from "../../src/domain/hashing.js";
import type { ChatNode } from "../../src/node.js";
import {
  http,
  JWT_SECRET,
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
let C: ChatNode;

before(async () => {
  services = await startServices();
  A = await startNode(services, { OWNED_PARTITIONS: "0-2" });
  B = await startNode(services, { OWNED_PARTITIONS: "3-5" });
  C = await startNode(services, { OWNED_PARTITIONS: "6-7" });
});
after(async () => {
  await Promise.all([A, B, C].map((n) => n?.stop()));
  await services?.stop();
});

const nodes = () => [A, B, C] as ChatNode[];

async function storedMessages(u: TestUser, node: ChatNode, channelId: string): Promise<Message[]> {
  const out: Message[] = [];
  let after = 0;
  for (;;) {
    const r = await u.api<{ messages: Message[] }>(
      node,
      "GET",
      `/channels/${channelId}/messages?afterSeq=${after}&limit=100`,
    );
    out.push(...r.body.messages);
    if (r.body.messages.length < 100) return out;
    after = r.body.messages[r.body.messages.length - 1]?.seq ?? after;
  }
}

describe("I2: gap-free seq, the same order everywhere", () => {
  test("six senders on three nodes, concurrently", async () => {
    const users = await Promise.all(
      nodes()
        .concat(nodes())
        .map((n) => TestUser.register(n, "i2")),
    );
    const [owner, ...rest] = users as [TestUser, ...TestUser[]];
    const ch = await owner.group(A, "i2", rest);
    const socks = await Promise.all(users.map((u, i) => u.connect(nodes()[i % 3] as ChatNode)));
    const PER = 25;
    await Promise.all(
      socks.map(async (s, i) => {
        for (let k = 0; k < PER; k++) {
          const r = await s.send(ch.id, `u${i}-${k}`, `u${i}-${String(k).padStart(3, "0")}`);
          assert.equal(r.ok, true, JSON.stringify(r));
        }
      }),
    );
    const total = PER * socks.length;
    const views = await Promise.all(socks.map((s) => s.waitMessages(ch.id, total, 30_000)));
    const reference = views[0]?.map((m) => m.id);
    for (const v of views) {
      assert.deepEqual(
        v.map((m) => m.seq),
        Array.from({ length: total }, (_, i) => i + 1),
        "gap-free and in seq order",
      );
      assert.deepEqual(
        v.map((m) => m.id),
        reference,
        "same order for every client",
      );
    }
    // Each sender's messages keep their sending order.
    for (let i = 0; i < socks.length; i++) {
      const mine = (views[0] ?? []).filter((m) => m.body.startsWith(`u${i}-`)).map((m) => m.clientMsgId);
      assert.deepEqual(mine, [...mine].sort());
    }
    const stored = await storedMessages(owner, C, ch.id);
    assert.deepEqual(
      stored.map((m) => m.id),
      reference,
    );
    for (const u of users) u.closeAll();
  });
});

describe("I3: a retried clientMsgId is stored once", () => {
  test("concurrent doubles, a resend after a lost ack, a resend from another device", async () => {
    const ann = await TestUser.register(A);
    const ben = await TestUser.register(B);
    const ch = await ann.direct(A, ben);
    const s1 = await ann.connect(A);
    const s2 = await ann.connect(C); // another device of the same user
    const sb = await ben.connect(B);
    const [r1, r2] = await Promise.all([s1.send(ch.id, "once", "same-1"), s1.send(ch.id, "once", "same-1")]);
    assert.deepEqual([r1.ok, r2.ok], [true, true]);
    await sb.waitMessages(ch.id, 1);
    // The ack was "lost": the client resends after the message was stored, from another device too.
    assert.equal((await s1.send(ch.id, "once", "same-1")).ok, true);
    assert.equal((await s2.send(ch.id, "once", "same-1")).ok, true);
    // Another sender may use the same clientMsgId: that is another message.
    assert.equal((await sb.send(ch.id, "mine", "same-1")).ok, true);
    await sb.waitMessages(ch.id, 2);
    await sleep(500);
    const stored = await storedMessages(ann, A, ch.id);
    assert.deepEqual(
      stored.map((m) => [m.seq, m.senderId, m.clientMsgId]),
      [
        [1, ann.id, "same-1"],
        [2, ben.id, "same-1"],
      ],
    );
    // Live events may repeat a seq (the redelivered copy); a client keeps one per seq.
    assert.deepEqual([...new Set(sb.messages(ch.id).map((m) => m.seq))], [1, 2]);
    assert.ok(
      sb
        .messages(ch.id)
        .every((m) => (m.seq === 1 ? m.clientMsgId === "same-1" && m.senderId === ann.id : true)),
    );
    ann.closeAll();
    ben.closeAll();
  });
});

async function messageDeliveries(n: ChatNode): Promise<number> {
  const v = await n.metrics.brokerDeliveries.get();
  return v.values.find((x) => x.labels["kind"] === "message")?.value ?? 0;
}

describe("I5: a message crosses the broker once per node holding recipients", () => {
  test("group with members on two of three nodes, users on several user exchanges", async () => {
    // Four users on A, hashing to at least two different user exchanges (U = 4), two on B, none on C.
    const onA: TestUser[] = [];
    while (onA.length < 4 || new Set(onA.map((u) => userExchangeOf(u.id, 4))).size < 2)
      onA.push(await TestUser.register(A, "i5"));
    const onB = [await TestUser.register(B, "i5"), await TestUser.register(B, "i5")];
    const [owner, ...rest] = [...onA, ...onB] as [TestUser, ...TestUser[]];
    const ch = await owner.group(A, "i5", rest);
    const socks = [
      ...(await Promise.all(onA.map((u) => u.connect(A)))),
      ...(await Promise.all(onB.map((u) => u.connect(B)))),
    ];
    await (socks[0] as TestSocket).send(ch.id, "warm-up");
    for (const s of socks) await s.waitMessages(ch.id, 1);
    await sleep(300);
    const before = await Promise.all(nodes().map(messageDeliveries));
    const N = 10;
    for (let i = 0; i < N; i++) await (socks[i % socks.length] as TestSocket).send(ch.id, `m${i}`);
    for (const s of socks) await s.waitMessages(ch.id, N + 1);
    await sleep(500);
    const afterCounts = await Promise.all(nodes().map(messageDeliveries));
    const delta = afterCounts.map((v, i) => v - (before[i] ?? 0));
    assert.deepEqual(delta, [N, N, 0], `deliveries per node (A, B, C) for ${N} messages`);
    // Each socket got each message exactly once.
    for (const s of socks) assert.equal(s.messages(ch.id).length, N + 1);
    for (const u of [...onA, ...onB]) u.closeAll();
  });

  test("a direct chat between two users of one node touches only that node", async () => {
    const x = await TestUser.register(C);
    const y = await TestUser.register(C);
    const ch = await x.direct(C, y);
    const sx = await x.connect(C);
    const sy = await y.connect(C);
    const before = await Promise.all(nodes().map(messageDeliveries));
    await sx.send(ch.id, "local");
    await sy.waitMessages(ch.id, 1);
    await sleep(300);
    const delta = (await Promise.all(nodes().map(messageDeliveries))).map((v, i) => v - (before[i] ?? 0));
    assert.deepEqual(delta, [0, 0, 1]);
    x.closeAll();
    y.closeAll();
  });
});

describe("I7: bad input gets its error code and never stalls the node", () => {
  type Reply = { ok: boolean; error?: { code: string } };

  test("socket events", async () => {
    const ann = await TestUser.register(B);
    const ben = await TestUser.register(B);
    const eve = await TestUser.register(B);
    const ch = await ann.direct(B, ben);
    const other = await ben.direct(B, eve);
    const s = await ann.connect(B);
    const cases: Array<[string, string, unknown, string]> = [
      ["wrong types", "message:send", { channelId: 42, clientMsgId: "x", body: "hi" }, "INVALID_ARGUMENT"],
      ["not an object", "message:send", "hello", "INVALID_ARGUMENT"],
      ["null payload", "message:send", null, "INVALID_ARGUMENT"],
      ["array payload", "message:send", [1, 2], "INVALID_ARGUMENT"],
      ["blank body", "message:send", { channelId: ch.id, clientMsgId: "x", body: "  " }, "INVALID_ARGUMENT"],
      [
        "body over 4 KiB",
        "message:send",
        { channelId: ch.id, clientMsgId: "x", body: "é".repeat(2049) },
        "PAYLOAD_TOO_LARGE",
      ],
      [
        "huge body",
        "message:send",
        { channelId: ch.id, clientMsgId: "x", body: "x".repeat(60_000) },
        "PAYLOAD_TOO_LARGE",
      ],
      [
        "too many files",
        "message:send",
        { channelId: ch.id, clientMsgId: "x", body: "x", fileIds: Array(11).fill("a".repeat(24)) },
        "INVALID_ARGUMENT",
      ],
      [
        "unknown file",
        "message:send",
        { channelId: ch.id, clientMsgId: "x", body: "x", fileIds: ["a".repeat(24)] },
        "INVALID_ARGUMENT",
      ],
      [
        "bad clientMsgId",
        "message:send",
        { channelId: ch.id, clientMsgId: "a b", body: "x" },
        "INVALID_ARGUMENT",
      ],
      [
        "unknown channel",
        "message:send",
        { channelId: "0".repeat(24), clientMsgId: "x", body: "x" },
        "NOT_FOUND",
      ],
      ["not a member", "message:send", { channelId: other.id, clientMsgId: "x", body: "x" }, "FORBIDDEN"],
      [
        "NUL in the body",
        "message:send",
        { channelId: ch.id, clientMsgId: "x", body: "a\u0000b" },
        "INVALID_ARGUMENT",
      ],
      [
        "C0 control in the body",
        "message:send",
        { channelId: ch.id, clientMsgId: "x", body: "\u001b[31m" },
        "INVALID_ARGUMENT",
      ],
      [
        "unpaired surrogate",
        "message:send",
        { channelId: ch.id, clientMsgId: "x", body: "\ud83d" },
        "INVALID_ARGUMENT",
      ],
      ["receipt seq < 1", "receipt", { channelId: ch.id, seq: 0, kind: "read" }, "INVALID_ARGUMENT"],
      ["receipt bad kind", "receipt", { channelId: ch.id, seq: 1, kind: "seen" }, "INVALID_ARGUMENT"],
      ["receipt not a member", "receipt", { channelId: other.id, seq: 1, kind: "read" }, "FORBIDDEN"],
      ["typing unknown channel", "typing", { channelId: "nope", typing: true }, "NOT_FOUND"],
      ["typing wrong type", "typing", { channelId: ch.id, typing: "yes" }, "INVALID_ARGUMENT"],
      ["presence bad ids", "presence:subscribe", { userIds: ["x"] }, "INVALID_ARGUMENT"],
      ["presence too many", "presence:subscribe", { userIds: Array(501).fill(ben.id) }, "INVALID_ARGUMENT"],
      [
        "sync too many channels",
        "sync",
        { channels: Array.from({ length: 101 }, () => ({ channelId: ch.id, afterSeq: 0 })) },
        "INVALID_ARGUMENT",
      ],
      ["sync negative", "sync", { channels: [{ channelId: ch.id, afterSeq: -1 }] }, "INVALID_ARGUMENT"],
      ["sync not a member", "sync", { channels: [{ channelId: other.id, afterSeq: 0 }] }, "FORBIDDEN"],
    ];
    for (const [name, event, payload, code] of cases) {
      const r = await s.emit<Reply>(event, payload);
      assert.equal(r.ok, false, name);
      assert.equal(r.error?.code, code, name);
    }
    // No ack callback, unknown events: ignored without harm.
    s.socket.emit("message:send", { channelId: ch.id, clientMsgId: "noack", body: "x" });
    s.socket.emit("no-such-event", { a: 1 });
    // Flood: the burst passes, the rest is RATE_LIMITED.
    const flood = await Promise.all(
      Array.from({ length: 60 }, (_, i) => s.send(ch.id, `f${i}`, `flood-${i}`)),
    );
    const ok = flood.filter((r) => r.ok).length;
    const limited = flood.filter((r: MessageSendReply) => !r.ok && r.error.code === "RATE_LIMITED").length;
    assert.ok(ok >= 35 && ok < 60, `ok ${ok}`); // burst 40, minus sends the cases above already spent
    assert.equal(ok + limited, 60);
    // A frame beyond the transport limit closes that socket only.
    const big = await ann.connect(B);
    const closed = new Promise<void>((r) => big.socket.once("disconnect", () => r()));
    big.socket.emit(
      "message:send",
      { channelId: ch.id, clientMsgId: "big", body: "x".repeat(2_000_000) },
      () => undefined,
    );
    await closed;
    // The node keeps serving: the well-behaved socket still sends and receives.
    await sleep(1100);
    const sb = await ben.connect(B);
    assert.equal((await s.send(ch.id, "still fine")).ok, true);
    await sb.waitEvent<Message>("message", (m) => m.body === "still fine");
    assert.equal((await http<{ ready: boolean }>(B.opsUrl, "GET", "/readyz")).body.ready, true);
    const stored = await storedMessages(ann, B, ch.id);
    assert.equal(
      stored.filter((m) => m.clientMsgId === "noack").length,
      0,
      "a send without an ack is refused",
    );
    ann.closeAll();
    ben.closeAll();
  });

  test("handshake tokens", async () => {
    const u = await TestUser.register(C);
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(u.id)
      .setIssuer("vibetalk")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("another-secret-0123456789"));
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(u.id)
      .setIssuer("vibetalk")
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(JWT_SECRET));
    const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify({ sub: u.id, iss: "vibetalk" })).toString("base64url")}.`;
    for (const [name, token] of [
      ["missing", undefined],
      ["garbage", "abc"],
      ["forged", forged],
      ["expired", expired],
      ["alg none", none],
      ["number", 42],
    ] as const) {
      await assert.rejects(
        TestSocket.open(C.url, token as string),
        (err: { data?: { code?: string } }) => err.data?.code === "UNAUTHENTICATED",
        name,
      );
    }
    const ok = await TestSocket.open(C.url, u.token);
    ok.close();
  });

  test("HTTP requests", async () => {
    const u = await TestUser.register(A);
    const v = await TestUser.register(A);
    const w = await TestUser.register(A);
    const ch = await v.direct(A, w);
    const base = `${A.url}/api/v1`;
    const raw = async (
      method: string,
      path: string,
      init: { headers?: Record<string, string>; body?: string } = {},
    ) => {
      const r = await fetch(`${base}${path}`, { method, ...init });
      const body = (await r.json()) as { error?: { code: string } };
      return [r.status, body.error?.code] as const;
    };
    const auth = { authorization: `Bearer ${u.token}` };
    const json = { "content-type": "application/json" };
    const cases: Array<[string, Promise<readonly [number, string | undefined]>, number, string]> = [
      ["no token", raw("GET", "/me"), 401, "UNAUTHENTICATED"],
      ["bad token", raw("GET", "/me", { headers: { authorization: "Bearer nope" } }), 401, "UNAUTHENTICATED"],
      ["basic auth", raw("GET", "/me", { headers: { authorization: "Basic eDp5" } }), 401, "UNAUTHENTICATED"],
      [
        "malformed JSON",
        raw("POST", "/channels", { headers: { ...auth, ...json }, body: "{nope" }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "huge body",
        raw("POST", "/channels", {
          headers: { ...auth, ...json },
          body: JSON.stringify({ type: "group", name: "x".repeat(100_000) }),
        }),
        413,
        "PAYLOAD_TOO_LARGE",
      ],
      [
        "wrong types",
        raw("POST", "/channels", {
          headers: { ...auth, ...json },
          body: JSON.stringify({ type: "group", name: 5 }),
        }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "unknown type",
        raw("POST", "/channels", { headers: { ...auth, ...json }, body: JSON.stringify({ type: "party" }) }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "direct with self",
        raw("POST", "/channels", {
          headers: { ...auth, ...json },
          body: JSON.stringify({ type: "direct", userId: u.id }),
        }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "direct with nobody",
        raw("POST", "/channels", {
          headers: { ...auth, ...json },
          body: JSON.stringify({ type: "direct", userId: "f".repeat(24) }),
        }),
        404,
        "NOT_FOUND",
      ],
      ["unknown channel", raw("GET", `/channels/${"0".repeat(24)}`, { headers: auth }), 404, "NOT_FOUND"],
      ["not a member", raw("GET", `/channels/${ch.id}/messages`, { headers: auth }), 403, "FORBIDDEN"],
      [
        "limit too big",
        raw("GET", `/channels/${ch.id}/messages?limit=1000`, {
          headers: { authorization: `Bearer ${v.token}` },
        }),
        400,
        "INVALID_ARGUMENT",
      ],
      ["bad cursor", raw("GET", "/channels?cursor=zzz", { headers: auth }), 400, "INVALID_ARGUMENT"],
      ["unknown route", raw("GET", "/nothing", { headers: auth }), 404, "NOT_FOUND"],
      [
        "taken username",
        raw("POST", "/auth/register", {
          headers: json,
          body: JSON.stringify({ username: u.username, password: "another password" }),
        }),
        409,
        "CONFLICT",
      ],
      [
        "bad username",
        raw("POST", "/auth/register", {
          headers: json,
          body: JSON.stringify({ username: "a b", password: "another password" }),
        }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "wrong password",
        raw("POST", "/auth/login", {
          headers: json,
          body: JSON.stringify({ username: u.username, password: "wrong password" }),
        }),
        401,
        "UNAUTHENTICATED",
      ],
      [
        "unknown user",
        raw("POST", "/auth/login", {
          headers: json,
          body: JSON.stringify({ username: "nobody_here", password: "wrong password" }),
        }),
        401,
        "UNAUTHENTICATED",
      ],
      [
        "file not multipart",
        raw("POST", `/files?channelId=${ch.id}`, { headers: { ...auth, ...json }, body: "{}" }),
        400,
        "INVALID_ARGUMENT",
      ],
      ["file unknown", raw("GET", `/files/${"a".repeat(24)}`, { headers: auth }), 404, "NOT_FOUND"],
      [
        "NUL in a display name",
        raw("POST", "/auth/register", {
          headers: json,
          body: JSON.stringify({
            username: "nul_name",
            password: "another password",
            displayName: "a\u0000",
          }),
        }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "control character in a group name",
        raw("POST", "/channels", {
          headers: { ...auth, ...json },
          body: JSON.stringify({ type: "group", name: "g\u0007" }),
        }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "NUL in a new group name",
        raw("PATCH", `/channels/${ch.id}`, {
          headers: { ...auth, ...json },
          body: JSON.stringify({ name: "\u0000" }),
        }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "NUL in a login username",
        raw("POST", "/auth/login", {
          headers: json,
          body: JSON.stringify({ username: "a\u0000", password: "whatever it is" }),
        }),
        400,
        "INVALID_ARGUMENT",
      ],
      ["NUL in a user search", raw("GET", "/users?query=a%00", { headers: auth }), 400, "INVALID_ARGUMENT"],
    ];
    for (const [name, p, status, code] of cases) {
      const [s, c] = await p;
      assert.deepEqual([s, c], [status, code], name);
    }
    // A file name with a control character: refused, nothing stored; a tab is kept as "_".
    const upload = async (filename: string) => {
      const form = new FormData();
      form.append("file", new Blob(["hello"], { type: "text/plain" }), filename);
      const r = await fetch(`${base}/files?channelId=${ch.id}`, {
        method: "POST",
        headers: { authorization: `Bearer ${v.token}` },
        body: form,
      });
      return { status: r.status, body: (await r.json()) as { error?: { code: string; message: string } } };
    };
    const bad = await upload("a\u0000b.txt");
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error?.code, "INVALID_ARGUMENT");
    assert.match(bad.body.error?.message ?? "", /^filename: must not contain control characters/);
    assert.equal((await upload("a\u0001.txt")).status, 400);
    const ok = await upload("tab\there.txt");
    assert.equal(ok.status, 201);
    assert.equal((ok.body as unknown as { file: { name: string } }).file.name, "tab_here.txt");
    // Login flood from one address.
    const flood = await Promise.all(
      Array.from({ length: 80 }, () =>
        raw("POST", "/auth/login", {
          headers: json,
          body: JSON.stringify({ username: "nobody_here", password: "x" }),
        }),
      ),
    );
    assert.ok(flood.some(([s, c]) => s === 429 && c === "RATE_LIMITED"));
    // Still serving.
    assert.equal((await v.api(A, "GET", "/me")).status, 200);
    await waitFor(
      "ready",
      async () => (await http<{ ready: boolean }>(A.opsUrl, "GET", "/readyz")).body.ready,
    );
  });
});
