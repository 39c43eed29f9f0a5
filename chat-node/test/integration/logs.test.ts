// Logs for a log stack (issue 19, item 4): a chat-node in a child process, as a pod runs it, at
// LOG_LEVEL=debug on real Redis, RabbitMQ and FerretDB. Registers, logs in (a wrong and a right
// password), changes a password, chats over Socket.IO and logs out with known secrets; then every
// line of its output must parse as JSON with level, time, node, pod, msg and traceId, request lines
// with reqId and socket lines with socketId — and no password or token the test sent may appear.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import type { AuthReply, Channel } from "@vibetalk/protocol";
import { ChildNode } from "../support/child-node.js";
import { http, sleep, startServices, TestSocket, type Services } from "../support/harness.js";

let services: Services;
let node: ChildNode;

before(async () => {
  services = await startServices();
  node = await ChildNode.start(services, {
    LOG_LEVEL: "debug",
    POD_NAME: "chat-node-logs-0",
    NODE_ID: "logs-node",
    OWNED_PARTITIONS: "all",
    DRAIN_SECONDS: "2",
  });
});
after(async () => {
  await node?.stop();
  await services?.stop();
});

test("every line is JSON with its fields, and nothing secret is in them", async () => {
  const secrets: string[] = [];
  const tag = randomBytes(4).toString("hex");
  const pw = (n: string) => {
    const p = `pw-${n}-${tag}-${randomBytes(6).toString("hex")}`;
    secrets.push(p);
    return p;
  };
  const register = async (name: string, password: string) => {
    const r = await http<AuthReply>(node.url, "POST", "/api/v1/auth/register", {
      body: { username: `${name}${tag}`, password, displayName: name },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    secrets.push(r.body.token);
    return r.body;
  };
  const annPw = pw("ann");
  const ann = await register("logann", annPw);
  const ben = await register("logben", pw("ben"));
  // A wrong password, then the right one.
  const wrong = pw("wrong");
  const bad = await http(node.url, "POST", "/api/v1/auth/login", {
    body: { username: `logann${tag}`, password: wrong },
  });
  assert.equal(bad.status, 401);
  const login = await http<AuthReply>(node.url, "POST", "/api/v1/auth/login", {
    body: { username: `logann${tag}`, password: annPw },
  });
  assert.equal(login.status, 200);
  secrets.push(login.body.token);
  // A request with a bad bearer token and a cookie header, both secret-looking.
  const fakeBearer = `bearer-${tag}-${randomBytes(8).toString("hex")}`;
  secrets.push(fakeBearer);
  const cookie = `session-cookie-${tag}`;
  secrets.push(cookie);
  const refused = await http(node.url, "GET", "/api/v1/me", {
    token: fakeBearer,
    headers: { cookie: `sid=${cookie}`, traceparent: `00-${"ab".repeat(16)}-${"cd".repeat(8)}-01` },
  });
  assert.equal(refused.status, 401);
  // Chat over Socket.IO (polling and WebSocket), with a bad handshake token too.
  const ch = (
    await http<{ channel: Channel }>(node.url, "POST", "/api/v1/channels", {
      token: login.body.token,
      body: { type: "direct", userId: ben.user.id },
    })
  ).body.channel;
  const sa = await TestSocket.open(node.url, login.body.token, { transports: ["polling"] });
  const sb = await TestSocket.open(node.url, ben.token, { transports: ["websocket"] });
  await assert.rejects(TestSocket.open(node.url, `${fakeBearer}x`, { transports: ["polling"] }));
  for (let i = 0; i < 3; i++) assert.equal((await sa.send(ch.id, `hello ${i}`, randomUUID())).ok, true);
  await sb.waitMessages(ch.id, 3);
  assert.equal(
    (await sb.emit<{ ok: boolean }>("message:send", { channelId: ch.id, body: "no id" })).ok,
    false,
  );
  // A password change, then a logout.
  const newPw = pw("new");
  const changed = await http<{ token?: string }>(node.url, "POST", "/api/v1/auth/password", {
    token: ben.token,
    body: { currentPassword: secrets[secrets.indexOf(ben.token) - 1] ?? "", newPassword: newPw },
  });
  if (typeof changed.body?.token === "string") secrets.push(changed.body.token);
  await http(node.url, "POST", "/api/v1/auth/logout", { token: login.body.token });
  sa.close();
  sb.close();
  await sleep(300);
  await node.stop();
  void ann;

  const lines = node
    .log()
    .split("\n")
    .filter((l) => l.trim() !== "");
  assert.ok(lines.length > 20, `only ${lines.length} lines`);
  const parsed = lines.map((l, i) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      assert.fail(`line ${i + 1} is not JSON: ${l.slice(0, 200)}`);
    }
  });
  const levels = new Set(["trace", "debug", "info", "warn", "error", "fatal"]);
  for (const [i, o] of parsed.entries()) {
    const where = `line ${i + 1}: ${lines[i]?.slice(0, 300)}`;
    assert.ok(levels.has(o["level"] as string), `level, ${where}`);
    assert.ok(!Number.isNaN(Date.parse(o["time"] as string)), `time, ${where}`);
    assert.equal(o["node"], "logs-node", where);
    assert.equal(o["pod"], "chat-node-logs-0", where);
    assert.equal(typeof o["msg"], "string", where);
    assert.ok("traceId" in o, `traceId, ${where}`);
    // A request's lines: reqId and its trace id (the listening line of the HTTP server has neither).
    if (o["event"] === "http.request" || "reqId" in o) {
      assert.match(String(o["reqId"]), /^[0-9a-f]{16}$/, where);
      assert.match(String(o["traceId"]), /^[0-9a-f]{32}$/, where);
    }
    if (o["component"] === "socket" || String(o["event"]).startsWith("socket.")) {
      assert.equal(typeof o["socketId"], "string", where);
      assert.match(String(o["traceId"]), /^[0-9a-f]{32}$/, where);
    }
  }
  const requests = parsed.filter((o) => o["event"] === "http.request");
  assert.ok(requests.length >= 8, `request lines: ${requests.length}`);
  assert.ok(
    requests.some((o) => o["traceId"] === "ab".repeat(16) && o["status"] === 401),
    "the caller's traceparent is the request's trace id",
  );
  const socketEvents = parsed.filter(
    (o) => typeof o["event"] === "string" && (o["event"] as string).startsWith("socket."),
  );
  for (const ev of ["socket.connected", "socket.event", "socket.refused", "socket.disconnected"])
    assert.ok(
      socketEvents.some((o) => o["event"] === ev),
      `a ${ev} line`,
    );
  assert.ok(socketEvents.some((o) => o["event"] === "socket.connected" && o["transport"] === "polling"));
  // Nothing secret.
  const text = lines.join("\n");
  for (const s of secrets)
    assert.equal(text.includes(s), false, `a secret appears in the logs: ${s.slice(0, 12)}…`);
  assert.equal(/authorization/i.test(text) && /Bearer /.test(text), false, "no Authorization header");
  console.log(
    `# ${lines.length} lines, ${requests.length} request lines, ${socketEvents.length} socket lines, ${secrets.length} secrets absent`,
  );
});
