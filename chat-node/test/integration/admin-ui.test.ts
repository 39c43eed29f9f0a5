// The Socket.IO admin view (issue 19, item 3): @socket.io/admin-ui on the operations port of two
// real chat-nodes sharing real Redis (the streams adapter carries fetchSockets and the admin events).
// Off unless configured; refuses without or with wrong credentials; with them, one node's admin view
// lists the sockets of both nodes, with their rooms. The client port refuses `/admin`, the
// operations port the chat namespace.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import bcrypt from "bcryptjs";
import { io as connectSocket, type Socket } from "socket.io-client";
import type { ChatNode } from "../../src/node.js";
import { startNode, startServices, TestUser, waitFor, type Services } from "../support/harness.js";

const USER = "ops-admin";
const PASSWORD = "admin view password 1";
let services: Services;
let A: ChatNode;
let B: ChatNode;
let plain: ChatNode;
const opened: Socket[] = [];

before(async () => {
  services = await startServices();
  const hash = bcrypt.hashSync(PASSWORD, 10);
  const admin = { ADMIN_UI_USERNAME: USER, ADMIN_UI_PASSWORD_HASH: hash };
  A = await startNode(services, { ...admin, OWNED_PARTITIONS: "all", NODE_ID: "admin-a" });
  B = await startNode(services, { ...admin, NODE_ID: "admin-b" });
  plain = await startNode(services, { NODE_ID: "admin-off" });
});
after(async () => {
  for (const s of opened) s.close();
  await Promise.all([A, B, plain].map((n) => n?.stop()));
  await services?.stop();
});

interface Outcome {
  connected: boolean;
  error?: string;
  events: Array<[string, unknown[]]>;
  socket: Socket;
}

function adminConnect(
  url: string,
  auth: Record<string, string> | undefined,
  nsp = "/admin",
): Promise<Outcome> {
  const socket = connectSocket(`${url}${nsp}`, {
    ...(auth ? { auth } : {}),
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
  });
  opened.push(socket);
  const events: Array<[string, unknown[]]> = [];
  socket.onAny((ev: string, ...args: unknown[]) => events.push([ev, args]));
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve({ connected: false, error: "timeout", events, socket }), 8000);
    socket.once("connect", () => {
      clearTimeout(t);
      resolve({ connected: true, events, socket });
    });
    socket.once("connect_error", (e: Error) => {
      clearTimeout(t);
      resolve({ connected: false, error: e.message, events, socket });
    });
  });
}

interface SerializedSocket {
  id: string;
  nsp: string;
  rooms: string[];
  data: { userId?: string };
  handshake: { auth?: unknown };
}

describe("admin view", () => {
  test("off unless configured: no admin namespace on a node without credentials", async () => {
    const o = await adminConnect(plain.opsUrl, { username: USER, password: PASSWORD });
    assert.equal(o.connected, false, "nothing answers the admin namespace");
  });

  test("refuses without credentials and with a wrong password", async () => {
    const none = await adminConnect(A.opsUrl, undefined);
    assert.equal(none.connected, false);
    assert.equal(none.error, "invalid credentials");
    const wrong = await adminConnect(A.opsUrl, { username: USER, password: "guess" });
    assert.equal(wrong.connected, false);
    assert.equal(wrong.error, "invalid credentials");
    const otherUser = await adminConnect(A.opsUrl, { username: "root", password: PASSWORD });
    assert.equal(otherUser.connected, false);
  });

  test("the client port refuses /admin, the operations port the chat namespace", async () => {
    const onClientPort = await adminConnect(A.url, { username: USER, password: PASSWORD });
    assert.equal(onClientPort.connected, false, "admin namespace not served on the client port");
    const u = await TestUser.register(A, "adm");
    const chatOnOps = await adminConnect(A.opsUrl, { token: u.token }, "");
    assert.equal(chatOnOps.connected, false, "chat namespace not served on the operations port");
  });

  test("with credentials: every node's sockets and their rooms, and live connects from the other node", async () => {
    const ann = await TestUser.register(A, "adma");
    const ben = await TestUser.register(B, "admb");
    await ann.direct(A, ben);
    const sa = await ann.connect(A);
    const sb = await ben.connect(B);
    const o = await adminConnect(A.opsUrl, { username: USER, password: PASSWORD });
    assert.equal(o.connected, true, o.error);
    const all = await waitFor("all_sockets", () => o.events.find(([ev]) => ev === "all_sockets"));
    const list = all[1][0] as SerializedSocket[];
    const chat = list.filter((s) => s.nsp === "/");
    const ids = chat.map((s) => s.id).sort();
    assert.ok(ids.includes(sa.socket.id as string), "node A's socket is listed");
    assert.ok(
      ids.includes(sb.socket.id as string),
      "node B's socket is listed (fetched from the other node)",
    );
    const benSocket = chat.find((s) => s.id === sb.socket.id);
    assert.ok(benSocket?.rooms.includes(`user:${ben.id}`), `rooms: ${JSON.stringify(benSocket?.rooms)}`);
    assert.equal(benSocket?.data.userId, ben.id);
    assert.equal(JSON.stringify(list).includes(ann.token), false, "no session token in the view");
    // Stats from both servers arrive (server_stats every 2 s, through the adapter).
    await waitFor(
      "server_stats of both nodes",
      () => {
        const ids = new Set(
          o.events
            .filter(([ev]) => ev === "server_stats")
            .map(([, a]) => (a[0] as { serverId: string }).serverId),
        );
        return ids.has("admin-a") && ids.has("admin-b");
      },
      10_000,
    );
    // A socket connecting on B shows up live at A's admin view.
    const sb2 = await ben.connect(B);
    await waitFor("socket_connected from node B", () =>
      o.events.some(
        ([ev, a]) => ev === "socket_connected" && (a[0] as SerializedSocket).id === sb2.socket.id,
      ),
    );
    // Read-only (the default): no disconnect or emit features offered.
    const config = o.events.find(([ev]) => ev === "config")?.[1][0] as { supportedFeatures: string[] };
    assert.ok(!config.supportedFeatures.includes("DISCONNECT"), JSON.stringify(config));
    assert.ok(!config.supportedFeatures.includes("EMIT"));
    ann.closeAll();
    ben.closeAll();
  });
});
