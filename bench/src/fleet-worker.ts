// One client process of the connection-scale benchmark (connections.ts), started by client-fleet.ts with its
// open-files limit raised to the hard limit: holds up to ~20,000 Socket.IO WebSocket clients, each bound to
// one of the loopback source addresses it is given (127.0.0.2, 127.0.0.3, …; `localAddress` reaches the
// `ws` socket through engine.io-client), so no destination runs out of ephemeral ports. Commands and
// progress travel over the IPC channel (FleetCommand / FleetReport); the process exits when its parent goes.
import { createHmac, randomBytes } from "node:crypto";
import { io } from "socket.io-client";
import { WebSocket } from "ws";
import { openFilesLimit, type FleetCommand, type FleetReport, type FleetTarget } from "./client-fleet.js";

const send = (r: FleetReport): void => void process.send?.(r);

/** An HS256 session token as chat-node's TokenService issues them (sub, iss, jti, iat, exp, ims). */
export function sessionToken(secret: string, userId: string, ttlSeconds = 3600): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Date.now();
  const iat = Math.floor(now / 1000);
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({
    sub: userId,
    iss: "vibetalk",
    jti: randomBytes(16).toString("base64url"),
    iat,
    exp: iat + ttlSeconds,
    ims: now,
  })}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

/** What `disconnect` closes: a Socket.IO client or a raw WebSocket (Centrifugo). */
interface Held {
  close(): void;
}
const sockets: Held[] = [];
let dropped = 0;

/**
 * A Centrifugo client over its JSON protocol (one command or reply per line of a frame): connect, subscribe
 * to `u<i>`, answer the server's pings (`{}`) with pongs. Resolves once subscribed; rejects on an error reply.
 */
function centrifugoClient(url: string, i: number, localAddress: string, timeoutMs: number): Promise<Held> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { localAddress, handshakeTimeout: timeoutMs });
    const timer = setTimeout(() => fail(new Error("connect/subscribe timed out")), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    ws.once("open", () => ws.send(JSON.stringify({ id: 1, connect: {} })));
    ws.once("error", fail);
    ws.on("message", (data: Buffer) => {
      for (const line of data.toString().split("\n")) {
        if (!line) continue;
        const m = JSON.parse(line) as { id?: number; error?: { code: number; message: string } };
        if (m.error) return fail(new Error(`centrifugo ${m.error.code} ${m.error.message}`));
        if (m.id === undefined)
          ws.send("{}"); // a ping: answer with a pong
        else if (m.id === 1) ws.send(JSON.stringify({ id: 2, subscribe: { channel: `u${i}` } }));
        else if (m.id === 2) {
          clearTimeout(timer);
          ws.off("error", fail);
          ws.on("error", () => undefined);
          ws.once("close", () => dropped++);
          resolve({
            close() {
              ws.removeAllListeners("close");
              ws.close();
            },
          });
        }
      }
    });
  });
}

async function connectAll(c: Extract<FleetCommand, { t: "connect" }>): Promise<void> {
  const jobs = c.targets.flatMap((t) => Array.from({ length: t.count }, () => t));
  let next = 0;
  let connected = 0;
  let errors = 0;
  let inFlight = 0;
  const errorSamples: string[] = [];
  const t0 = performance.now();
  const progress = setInterval(() => send({ t: "progress", connected, errors, inFlight }), 1000);
  const one = (target: FleetTarget, i: number): Promise<void> =>
    target.centrifugo ? centrifugoOne(target, i) : socketIoOne(target, i);
  const centrifugoOne = (target: FleetTarget, i: number): Promise<void> =>
    centrifugoClient(target.url, i, c.addresses[i % c.addresses.length]!, c.timeoutMs).then(
      (h) => {
        connected++;
        sockets.push(h);
      },
      (err: Error) => {
        errors++;
        if (errorSamples.length < 5) errorSamples.push(err.message);
      },
    );
  const socketIoOne = (target: FleetTarget, i: number): Promise<void> =>
    new Promise((resolve) => {
      const auth = target.jwtSecret
        ? { token: sessionToken(target.jwtSecret, randomBytes(12).toString("hex")) }
        : {};
      const s = io(target.url, {
        transports: ["websocket"],
        forceNew: true,
        reconnection: false,
        timeout: c.timeoutMs,
        auth,
        localAddress: c.addresses[i % c.addresses.length],
      } as Parameters<typeof io>[1]);
      const fail = (why: string) => {
        errors++;
        if (errorSamples.length < 5) errorSamples.push(why);
        s.close();
        resolve();
      };
      s.once("connect", () => {
        connected++;
        s.once("disconnect", () => dropped++);
        sockets.push({
          close() {
            s.removeAllListeners("disconnect");
            s.close();
          },
        });
        resolve();
      });
      s.once("connect_error", (err: Error) => fail(err.message));
    });
  await Promise.all(
    Array.from({ length: Math.min(c.concurrency, jobs.length) }, async () => {
      while (next < jobs.length) {
        const i = next++;
        inFlight++;
        await one(jobs[i]!, i);
        inFlight--;
      }
    }),
  );
  clearInterval(progress);
  send({ t: "connected", connected, errors, seconds: (performance.now() - t0) / 1000, errorSamples });
}

process.on("message", (c: FleetCommand) => {
  if (c.t === "connect") void connectAll(c);
  else if (c.t === "disconnect") {
    const before = dropped;
    for (const s of sockets.splice(0)) s.close();
    send({ t: "disconnected", dropped: before });
    dropped = 0;
  }
});
process.on("disconnect", () => process.exit(0));
send({ t: "ready", pid: process.pid, nofile: openFilesLimit("self") });
