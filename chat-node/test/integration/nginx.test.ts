// nginx in front of two chat-nodes (issue 19, item 2): real nginx from packages/testkit, real
// chat-nodes on real Redis, RabbitMQ and FerretDB. Without affinity (round-robin) a polling client
// fails with Socket.IO's 400 "Session ID unknown"; with the cookie affinity it chats, and keeps its
// session while a chat-node starts and while another drains. nginx's timeouts must exceed the ping
// interval: with proxy_read_timeout shorter than it, idle sessions die on both transports; longer,
// they survive.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  followDrains,
  freePort,
  pollingSessionAnswers,
  startNginx,
  type NginxService,
} from "@vibetalk/testkit";
import type { Message } from "@vibetalk/protocol";
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
const nginxes: NginxService[] = [];
const sockets: Socket[] = [];

const hostPort = (n: ChatNode) => `${n.address.host}:${n.address.port}`;

before(async () => {
  services = await startServices();
  A = await startNode(services, { OWNED_PARTITIONS: "all", DRAIN_SECONDS: "6" });
  B = await startNode(services, { DRAIN_SECONDS: "6" });
  idle = idleSessions();
  await idle;
});

/**
 * A polling and a WebSocket client behind nginx with the default configuration, on node A, left idle
 * from the start of the file for the last test; disconnects are recorded.
 */
let idle: ReturnType<typeof idleSessions>;
/** The sockets `idleSessions` holds on A. */
const IDLE_ON_A = 2;
async function idleSessions() {
  const ng = await nginx({ upstreams: [hostPort(A)] });
  const u = await TestUser.register(A, "idle70");
  const ws = await TestUser.register(A, "idle70w");
  const ch = await u.direct(A, ws);
  const ps = pollingClient(ng.url, u.token);
  const wsk = connectSocket(ng.url, {
    auth: { token: ws.token },
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
  });
  sockets.push(wsk);
  await Promise.all([connected(ps), connected(wsk)]);
  const lost: string[] = [];
  ps.on("disconnect", (r) => lost.push(`polling: ${r}`));
  wsk.on("disconnect", (r) => lost.push(`websocket: ${r}`));
  return { ps, wsk, channelId: ch.id, since: Date.now(), lost };
}
let finished = false;
after(async () => {
  finished = true; // no handler reconnects from here on
  for (const s of sockets) s.close();
  await Promise.all(nginxes.map((n) => n.stop()));
  await Promise.all([A, B].map((n) => n?.stop()));
  await services?.stop();
});

async function nginx(
  opts: Partial<Parameters<typeof startNginx>[0]> & { upstreams: string[] },
): Promise<NginxService> {
  const n = await startNginx({ port: await freePort(), ...opts });
  nginxes.push(n);
  return n;
}

/** A polling client through nginx; a cookie jar (withCredentials) as a browser has. */
function pollingClient(url: string, token: string, opts: { reconnection?: boolean } = {}): Socket {
  const s = connectSocket(url, {
    auth: { token },
    transports: ["polling"],
    withCredentials: true,
    forceNew: true,
    reconnection: opts.reconnection ?? false,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
  });
  sockets.push(s);
  return s;
}

describe("affinity", () => {
  test("round-robin without affinity: a polling session breaks with 400 Session ID unknown", async () => {
    const ng = await nginx({ upstreams: [hostPort(A), hostPort(B)], affinity: "none" });
    // The raw protocol: a handshake, then requests of that session alternate between the nodes.
    const answers = await pollingSessionAnswers(ng.url);
    const unknown = answers.filter(([st, body]) => st === 400 && body.includes("Session ID unknown"));
    assert.ok(unknown.length >= 1, `expected a 400 Session ID unknown, got ${JSON.stringify(answers)}`);
    // A real client: forced to polling it cannot connect.
    const u = await TestUser.register(A, "rr");
    let failures = 0;
    for (let i = 0; i < 3; i++) {
      const s = pollingClient(ng.url, u.token);
      await connected(s, 5000).then(
        async () => {
          // Connected by luck of the rotation: the next requests break it.
          await waitFor("a disconnect", () => !s.connected, 5000).then(
            () => failures++,
            () => undefined,
          );
        },
        () => failures++,
      );
      s.close();
    }
    assert.equal(failures, 3, "every polling session failed without affinity");
  });

  test("with the cookie affinity: polling and WebSocket clients spread over both nodes and chat", async () => {
    const ng = await nginx({ upstreams: [hostPort(A), hostPort(B)] });
    const ws = await TestUser.register(A, "ngws");
    const users = await Promise.all(Array.from({ length: 4 }, () => TestUser.register(A, "ngp")));
    const sw = await TestSocket.open(ng.url, ws.token, { transports: ["websocket"] });
    const clients = users.map((u) => pollingClient(ng.url, u.token));
    await Promise.all(clients.map((c) => connected(c)));
    assert.ok(
      A.connections() >= 1 && B.connections() >= 1,
      `spread: A ${A.connections()}, B ${B.connections()}`,
    );
    for (const [i, u] of users.entries()) {
      const ch = await u.direct(A, ws);
      const c = clients[i] as Socket;
      const got: string[] = [];
      c.on("message", (m: Message) => got.push(m.body));
      const t0 = Date.now();
      const r = (await c.timeout(10_000).emitWithAck("message:send", {
        channelId: ch.id,
        clientMsgId: `m-${i}`,
        body: `hello ${i}`,
      })) as { ok: boolean };
      const ackMs = Date.now() - t0;
      assert.equal(r.ok, true);
      await sw.waitMessages(ch.id, 1);
      const t1 = Date.now();
      await sw.send(ch.id, `back ${i}`);
      await waitFor("the reply over polling", () => got.includes(`back ${i}`));
      console.log(
        `# through nginx: polling send ack ${ackMs} ms, WebSocket→polling delivery ${Date.now() - t1} ms`,
      );
    }
    // Every request of every session stayed on one node: no 400 in nginx's access log.
    const log = await ng.accessLog();
    assert.equal(log.filter((l) => l.startsWith("400 ")).length, 0, log.slice(-10).join("\n"));
    sw.close();
    for (const c of clients) c.close();
  });

  test("a polling session is kept while a chat-node starts and while another drains", async () => {
    // Counts below are this test's sessions only.
    // The idle sessions of the last test (IDLE_ON_A) stay on A throughout.
    await waitFor("the earlier tests' sessions gone", () => A.connections() + B.connections() === IDLE_ON_A);
    const ng = await nginx({ upstreams: [hostPort(A), hostPort(B)] });
    const ws = await TestUser.register(A, "scws");
    const users = await Promise.all(Array.from({ length: 6 }, () => TestUser.register(A, "scp")));
    // The peer connects to A directly, so that B.connections() counts polling clients only.
    const sw = await TestSocket.open(A.url, ws.token, { transports: ["websocket"] });
    const chans = await Promise.all(users.map((u) => u.direct(A, ws)));
    const clients = users.map((u) => pollingClient(ng.url, u.token, { reconnection: true }));
    const { disconnects, reconnectAsked, refusals } = followDrains(clients, () => finished);
    await Promise.all(clients.map((c) => connected(c)));
    const ids = clients.map((c) => c.id);
    // Scale out: C starts and joins the upstreams; nobody moves, new sessions may land on C.
    const C = await startNode(services, { DRAIN_SECONDS: "6" });
    try {
      await ng.setUpstreams([hostPort(A), hostPort(B), hostPort(C)]);
      await sleep(1500);
      assert.deepEqual(
        disconnects,
        clients.map(() => 0),
        "no session lost when a chat-node joined",
      );
      assert.deepEqual(
        clients.map((c) => c.id),
        ids,
      );
      const late = await Promise.all(Array.from({ length: 3 }, () => TestUser.register(A, "scl")));
      const lateClients = late.map((u) => pollingClient(ng.url, u.token));
      await Promise.all(lateClients.map((c) => connected(c)));
      assert.ok(C.connections() >= 1, "new sessions reach the new chat-node");
      for (const c of lateClients) c.close();
      await waitFor(
        "the late sessions gone",
        () => A.connections() + B.connections() + C.connections() === clients.length + 1 + IDLE_ON_A,
      );
      // Scale in: B drains. It stays pinned for its sessions and takes no new ones.
      const onB = B.connections();
      await ng.setUpstreams([hostPort(A), hostPort(C)], [hostPort(B)]);
      await sleep(500); // nginx's new workers take over
      await B.stop();
      await waitFor("every client connected again", () => clients.every((c) => c.connected), 20_000).catch(
        (e: Error) => {
          throw new Error(`${e.message}: connected ${clients.map((c) => c.connected)}, refusals ${refusals}`);
        },
      );
      console.log(`# refused handshakes during the drain (retried): ${refusals.length}`);
      const moved = reconnectAsked.filter(Boolean).length;
      assert.ok(onB >= 1, "the round-robin put some sessions on B");
      assert.equal(moved, onB, "exactly B's clients were asked to reconnect");
      clients.forEach((c, i) => {
        if (!reconnectAsked[i]) {
          assert.equal(disconnects[i], 0, `client ${i} (not on B) kept its session`);
          assert.equal(c.id, ids[i]);
        }
      });
      // Everyone still chats over polling, through nginx.
      for (const [i, c] of clients.entries()) {
        const got: string[] = [];
        c.on("message", (m: Message) => got.push(m.body));
        await sw.send(chans[i]!.id, `after scaling ${i}`);
        await waitFor(`client ${i} receives`, () => got.includes(`after scaling ${i}`));
      }
      const log = await ng.accessLog();
      const fromB = log.filter((l) => l.startsWith("400 ") && l.includes(` ${hostPort(B)} `)).length;
      console.log(`# 400 answers from the drained node (its sessions' last packets): ${fromB}`);
      console.log(
        `# scale-out/in: ${onB} of ${clients.length} polling clients were on the drained node and moved`,
      );
      // A 400 from a live chat-node would be a request routed away from its session. The drained node
      // may answer 400 to a session's last POST (a pong or close packet) racing its engine's close.
      const misrouted = log.filter((l) => l.startsWith("400 ") && !l.includes(` ${hostPort(B)} `));
      assert.deepEqual(misrouted, [], "no request of a live session reached another node");
    } finally {
      sw.close();
      await C.stop();
    }
  });
});

describe("timeouts and the ping interval", () => {
  test("proxy_read_timeout shorter than the ping interval kills idle sessions; longer keeps them", async () => {
    const services2 = services;
    const ping = { SOCKET_PING_INTERVAL_MS: "4000", SOCKET_PING_TIMEOUT_MS: "3000" };
    const N = await startNode(services2, ping);
    try {
      const short = await nginx({ upstreams: [hostPort(N)], timeoutSeconds: 2 });
      const long = await nginx({ upstreams: [hostPort(N)], timeoutSeconds: 6 });
      const u = await TestUser.register(N, "idle");
      const watch = async (url: string, transport: "polling" | "websocket") => {
        const s = connectSocket(url, {
          auth: { token: u.token },
          transports: [transport],
          forceNew: true,
          reconnection: false,
          withCredentials: true,
        });
        sockets.push(s);
        await connected(s);
        let reason: string | null = null;
        s.on("disconnect", (r) => (reason = r));
        return { s, reason: () => reason };
      };
      const idle = await Promise.all([
        watch(short.url, "polling"),
        watch(short.url, "websocket"),
        watch(long.url, "polling"),
        watch(long.url, "websocket"),
      ]);
      await sleep(15_000); // idle: only Engine.IO pings flow
      const reasons = idle.map((w) => w.reason());
      console.log(
        `# idle 15 s, ping 4 s: timeout 2 s → ${reasons[0]} / ${reasons[1]}; timeout 6 s → ${reasons[2]} / ${reasons[3]}`,
      );
      assert.notEqual(reasons[0], null, "polling behind a 2 s timeout dies");
      assert.notEqual(reasons[1], null, "WebSocket behind a 2 s timeout dies");
      assert.equal(reasons[2], null, "polling behind a 6 s timeout survives");
      assert.equal(reasons[3], null, "WebSocket behind a 6 s timeout survives");
      for (const w of idle) w.s.close();
    } finally {
      await N.stop();
    }
  });

  test("the default configuration: a session idle for 70 s (past nginx's stock 60 s) survives", async () => {
    // The sessions went idle in `before`: the file's other tests ran meanwhile (on other nginx
    // instances; none drains node A), so only what is left of the 70 s is waited here.
    const { ps, wsk, channelId, since, lost } = await idle;
    await sleep(Math.max(0, since + 70_000 - Date.now()));
    assert.deepEqual(lost, []);
    const got: string[] = [];
    ps.on("message", (m: Message) => got.push(m.body));
    const r = (await wsk
      .timeout(10_000)
      .emitWithAck("message:send", { channelId, clientMsgId: "idle", body: "still here" })) as {
      ok: boolean;
    };
    assert.equal(r.ok, true);
    await waitFor("delivered after the idle minute", () => got.includes("still here"));
  });
});
