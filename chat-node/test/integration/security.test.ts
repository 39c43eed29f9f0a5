// Hardening (docs/security.md) on real Redis, RabbitMQ and FerretDB: the client address behind
// proxies, login throttling, sessions that end (logout, password change, expiry, recovery), key
// rotation, password rehashing, presence and receipts bounded by membership, and a removal that takes
// effect on every node at once.
import assert from "node:assert/strict";
import { randomBytes, randomUUID, scryptSync } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { AuthReply, MessageSendReply } from "@vibetalk/protocol";
import { Redis } from "ioredis";
import { SignJWT } from "jose";
import { io as connectSocket, type Socket } from "socket.io-client";
import { MongoStore } from "../../src/adapters/mongo-store.js";
import { RedisRevocations } from "../../src/adapters/redis-revocations.js";
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
import { revocationsContract } from "../support/revocations.js";

let services: Services;
let A: ChatNode;
let B: ChatNode;
const extra: ChatNode[] = [];
let redis: Redis;

before(async () => {
  services = await startServices();
  A = await startNode(services, { OWNED_PARTITIONS: "0-3" });
  B = await startNode(services, { OWNED_PARTITIONS: "4-7" });
  redis = new Redis(services.redis.url);
});
after(async () => {
  redis?.disconnect();
  await Promise.all([A, B, ...extra].map((n) => n?.stop()));
  await services?.stop();
});

async function another(overrides: Record<string, string> = {}): Promise<ChatNode> {
  const n = await startNode(services, overrides);
  extra.push(n);
  return n;
}

const login = (node: ChatNode, username: string, password: string, headers: Record<string, string> = {}) =>
  http<AuthReply & { error?: { code: string } }>(node.url, "POST", "/api/v1/auth/login", {
    body: { username, password },
    headers,
  });

const forwardedFor = (i: number) => ({ "x-forwarded-for": `203.0.113.${i % 250}` });

async function metric(node: ChatNode, line: RegExp): Promise<number> {
  const text = await (await fetch(`${node.opsUrl}/metrics`)).text();
  const m = line.exec(text);
  return m ? Number(m[1]) : 0;
}

describe("the client's address", () => {
  test("X-Forwarded-For is ignored unless TRUST_PROXY names the proxy: forged addresses share one limit", async () => {
    // Cheap requests (refused by validation after the limiter counted them) reach it within a second.
    const n = await another();
    const answers = await Promise.all(
      Array.from({ length: 150 }, (_, i) => login(n, "", "", forwardedFor(i))),
    );
    const limited = answers.filter((r) => r.status === 429).length;
    assert.ok(limited >= 50, `forged X-Forwarded-For must not escape the limit (${limited} of 150 limited)`);
    assert.ok(answers.every((r) => r.status === 429 || r.status === 400));
  });

  test("with TRUST_PROXY=127.0.0.1 each forwarded address has its own limit", async () => {
    const n = await another({ TRUST_PROXY: "127.0.0.1" });
    const spread = await Promise.all(
      Array.from({ length: 150 }, (_, i) => login(n, "", "", forwardedFor(i))),
    );
    assert.equal(
      spread.filter((r) => r.status === 429).length,
      0,
      "150 over 150 addresses, none over its limit",
    );
    const one = await Promise.all(Array.from({ length: 150 }, () => login(n, "", "", forwardedFor(7))));
    assert.ok(one.filter((r) => r.status === 429).length >= 50, "one forwarded address is limited");
  });
});

describe("login throttling per account", () => {
  test("ten wrong passwords, then even the right one waits; other accounts are not affected", async () => {
    const n = await another({ TRUST_PROXY: "127.0.0.1" });
    const victim = await TestUser.register(n, "victim");
    const bystander = await TestUser.register(n, "bystander");
    for (let i = 0; i < 10; i++) {
      const r = await login(n, victim.username, `guess ${i}`, forwardedFor(i));
      assert.equal(r.status, 401, `guess ${i}`);
    }
    const throttled = await login(n, victim.username, "correct horse battery", forwardedFor(99));
    assert.equal(throttled.status, 429);
    assert.equal(throttled.body.error?.code, "RATE_LIMITED");
    assert.equal((await login(n, bystander.username, "correct horse battery")).status, 200);
    assert.ok((await metric(n, /vibetalk_login_failures_total\{[^}]*reason="password"[^}]*\} (\d+)/)) >= 10);
    assert.ok(
      (await metric(n, /vibetalk_login_failures_total\{[^}]*reason="throttled_account"[^}]*\} (\d+)/)) >= 1,
    );
  });
});

describe("sessions", () => {
  test("tokens without an expiry or an id are refused over HTTP and Socket.IO", async () => {
    const u = await TestUser.register(A);
    const key = new TextEncoder().encode(JWT_SECRET);
    const noExp = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(u.id)
      .setIssuer("vibetalk")
      .setIssuedAt()
      .setJti("x")
      .sign(key);
    const noJti = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(u.id)
      .setIssuer("vibetalk")
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(key);
    for (const token of [noExp, noJti]) {
      assert.equal((await http(A.url, "GET", "/api/v1/me", { token })).status, 401);
      await assert.rejects(
        TestSocket.open(A.url, token),
        (err: { data?: { code?: string } }) => err.data?.code === "UNAUTHENTICATED",
      );
    }
  });

  test("logout ends that session on every node: its requests are refused, its sockets told and closed", async () => {
    const u = await TestUser.register(A);
    const second = (await login(A, u.username, "correct horse battery")).body.token;
    const onB = await TestSocket.open(B.url, u.token);
    const otherOnB = await TestSocket.open(B.url, second);
    const out = await http(A.url, "POST", "/api/v1/auth/logout", { token: u.token });
    assert.equal(out.status, 200);
    assert.equal((await http(B.url, "GET", "/api/v1/me", { token: u.token })).status, 401);
    assert.equal((await http(B.url, "GET", "/api/v1/me", { token: second })).status, 200);
    await onB.waitEvent<{ reason: string }>("session:ended", (e) => e.reason === "logout");
    await waitFor("the logged-out socket closed", () => !onB.socket.connected);
    await sleep(200);
    assert.equal(otherOnB.socket.connected, true, "the other session's socket stays");
    await assert.rejects(TestSocket.open(B.url, u.token));
    otherOnB.close();
  });

  test("a password change ends every other session everywhere and returns a new token", async () => {
    const u = await TestUser.register(A);
    const t2 = (await login(B, u.username, "correct horse battery")).body.token;
    const sockets = [await TestSocket.open(A.url, u.token), await TestSocket.open(B.url, t2)];
    const wrong = await http<{ error: { code: string } }>(A.url, "POST", "/api/v1/auth/password", {
      token: u.token,
      body: { currentPassword: "not it", newPassword: "a new horse battery" },
    });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.error.code, "FORBIDDEN");
    const changed = await http<AuthReply>(A.url, "POST", "/api/v1/auth/password", {
      token: u.token,
      body: { currentPassword: "correct horse battery", newPassword: "a new horse battery" },
    });
    assert.equal(changed.status, 200);
    for (const node of [A, B]) {
      for (const old of [u.token, t2])
        assert.equal((await http(node.url, "GET", "/api/v1/me", { token: old })).status, 401);
      assert.equal((await http(node.url, "GET", "/api/v1/me", { token: changed.body.token })).status, 200);
    }
    for (const s of sockets) {
      await s.waitEvent<{ reason: string }>("session:ended", (e) => e.reason === "password_changed");
      await waitFor("socket closed", () => !s.socket.connected);
    }
    assert.equal((await login(B, u.username, "correct horse battery")).status, 401);
    assert.equal((await login(B, u.username, "a new horse battery")).status, 200);
    (await TestSocket.open(B.url, changed.body.token)).close();
  });

  test("connection state recovery re-checks the token: garbage is refused, the same user's token recovers", async () => {
    const u = await TestUser.register(A);
    const peer = await TestUser.register(A);
    const channel = await u.direct(A, peer);
    const peerSocket = await peer.connect(A);
    const recover = async (token: string): Promise<{ recovered: boolean } | { code: string }> => {
      const socket: Socket = connectSocket(A.url, {
        auth: { token: u.token },
        transports: ["websocket"],
        reconnectionDelay: 50,
        reconnectionDelayMax: 50,
        forceNew: true,
      });
      try {
        await new Promise<void>((res) => socket.once("connect", () => res()));
        // A broadcast (typing, through the adapter) gives the client an offset to recover from.
        const typed = new Promise<void>((res) => socket.once("typing", () => res()));
        await peerSocket.emit("typing", { channelId: channel.id, typing: true });
        await typed;
        socket.auth = { token };
        const outcome = new Promise<{ recovered: boolean } | { code: string }>((res) => {
          socket.once("connect", () => res({ recovered: socket.recovered }));
          socket.once("connect_error", (err: Error & { data?: { code?: string } }) =>
            res({ code: err.data?.code ?? err.message }),
          );
        });
        socket.io.engine.close();
        return await outcome;
      } finally {
        socket.close();
      }
    };
    assert.deepEqual(await recover("garbage"), { code: "UNAUTHENTICATED" });
    const other = await TestUser.register(A);
    assert.deepEqual(await recover(other.token), { code: "UNAUTHENTICATED" }, "another user's valid token");
    assert.deepEqual(await recover(u.token), { recovered: true });
    peerSocket.close();
  });

  test("key rotation: tokens of the previous secret work while both are configured, and not after", async () => {
    const previous = `previous-${randomBytes(16).toString("hex")}`;
    const current = `current-${randomBytes(16).toString("hex")}`;
    const before = await another({ JWT_SECRET: previous });
    const rotating = await another({ JWT_SECRET: current, JWT_PREVIOUS_SECRET: previous });
    const done = await another({ JWT_SECRET: current });
    const u = await TestUser.register(before);
    assert.equal((await http(rotating.url, "GET", "/api/v1/me", { token: u.token })).status, 200);
    (await TestSocket.open(rotating.url, u.token)).close();
    assert.equal((await http(done.url, "GET", "/api/v1/me", { token: u.token })).status, 401);
    const fresh = (await login(rotating, u.username, "correct horse battery")).body.token;
    assert.equal((await http(done.url, "GET", "/api/v1/me", { token: fresh })).status, 200);
  });

  test("a password stored by an earlier version (scrypt) logs in and is rehashed to Argon2id", async () => {
    const store = await MongoStore.connect(services.mongo.url, 5000);
    try {
      const salt = randomBytes(16);
      const key = scryptSync("an old battery horse", salt, 64, { N: 16384, r: 8, p: 1 });
      const username = `legacy_${randomBytes(4).toString("hex")}`;
      await store.createUser({
        username,
        displayName: username,
        passwordHash: ["scrypt", 16384, 8, 1, salt.toString("base64"), key.toString("base64")].join("$"),
      });
      assert.equal((await login(A, username, "an old battery horse")).status, 200);
      assert.match(
        (await store.findUserByUsername(username))?.passwordHash ?? "",
        /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/,
      );
      assert.equal((await login(B, username, "an old battery horse")).status, 200);
      assert.equal((await login(B, username, "an old battery hors")).status, 401);
    } finally {
      await store.close();
    }
  });
});

describe("SessionRevocations contract", () => {
  revocationsContract("redis", () => new RedisRevocations(redis));
});

describe("membership bounds what one sees", () => {
  test("presence only of users who share a channel", async () => {
    const [u, friend, groupmate, stranger] = (await Promise.all(
      [1, 2, 3, 4].map(() => TestUser.register(A)),
    )) as [TestUser, TestUser, TestUser, TestUser];
    await u.direct(A, friend);
    await groupmate.group(A, "g", [u]);
    const s = await u.connect(B);
    const refused = await s.emit<{ ok: boolean; error?: { code: string; details?: { userIds: string[] } } }>(
      "presence:subscribe",
      { userIds: [friend.id, stranger.id] },
    );
    assert.equal(refused.ok, false);
    assert.equal(refused.error?.code, "FORBIDDEN");
    assert.deepEqual(refused.error?.details?.userIds, [stranger.id]);
    const ok = await s.emit<{ ok: boolean; presence: unknown[] }>("presence:subscribe", {
      userIds: [friend.id, groupmate.id, u.id],
    });
    assert.equal(ok.ok, true);
    assert.equal(ok.presence.length, 3);
    // The refused subscription joined nothing: the stranger coming online is not seen.
    await stranger.connect(A);
    await sleep(500);
    assert.equal(
      s.of<{ userId: string }>("presence").filter((p) => p.userId === stranger.id).length,
      0,
      "no presence of the stranger",
    );
    u.closeAll();
    stranger.closeAll();
  });

  test("a read receipt beyond the channel's last message is refused; at it, accepted", async () => {
    const [u, v] = await Promise.all([TestUser.register(A), TestUser.register(A)]);
    const ch = await u.direct(A, v);
    const us = await u.connect(A);
    const vs = await v.connect(B);
    assert.equal((await us.send(ch.id, "one")).ok, true);
    const [m] = await vs.waitMessages(ch.id, 1);
    assert.equal(m?.seq, 1);
    const beyond = await vs.emit<{ ok: boolean; error?: { code: string } }>("receipt", {
      channelId: ch.id,
      kind: "read",
      seq: 999_999_999_999,
    });
    assert.deepEqual([beyond.ok, beyond.error?.code], [false, "INVALID_ARGUMENT"]);
    const two = await vs.emit<{ ok: boolean }>("receipt", { channelId: ch.id, kind: "read", seq: 2 });
    assert.equal(two.ok, false, "seq 2 does not exist yet");
    assert.equal(
      (await vs.emit<{ ok: boolean }>("receipt", { channelId: ch.id, kind: "read", seq: 1 })).ok,
      true,
    );
    await sleep(1500);
    const details = await v.api<{ members: { userId: string; lastReadSeq: number }[] }>(
      B,
      "GET",
      `/channels/${ch.id}`,
    );
    assert.equal(details.body.members.find((x) => x.userId === v.id)?.lastReadSeq, 1);
    u.closeAll();
    v.closeAll();
  });

  test("a member removed on one node can no longer send, read or type on another, at once", async () => {
    const [owner, member, other] = (await Promise.all([1, 2, 3].map(() => TestUser.register(A)))) as [
      TestUser,
      TestUser,
      TestUser,
    ];
    const g = await owner.group(A, "removal", [member, other]);
    const ms = await member.connect(B);
    // Warm B's members cache, so a stale entry would be used if nothing invalidated it.
    assert.equal((await ms.send(g.id, "before")).ok, true);
    assert.equal((await member.api(B, "GET", `/channels/${g.id}/messages`)).status, 200);
    const removed = await owner.api(A, "DELETE", `/channels/${g.id}/members/${member.id}`);
    assert.equal(removed.status, 200);
    const send = await ms.emit<MessageSendReply>("message:send", {
      channelId: g.id,
      clientMsgId: randomUUID(),
      body: "after",
    });
    assert.deepEqual([send.ok, send.ok ? undefined : send.error.code], [false, "FORBIDDEN"]);
    assert.equal((await member.api(B, "GET", `/channels/${g.id}/messages`)).status, 403);
    const typing = await ms.emit<{ ok: boolean; error?: { code: string } }>("typing", {
      channelId: g.id,
      typing: true,
    });
    assert.deepEqual([typing.ok, typing.error?.code], [false, "FORBIDDEN"]);
    const history = await owner.api<{ messages: { body: string }[] }>(A, "GET", `/channels/${g.id}/messages`);
    assert.deepEqual(
      history.body.messages.map((x) => x.body),
      ["before"],
    );
    member.closeAll();
  });
});
