// The "textbook design" baseline of the throughput benchmark (main.ts, issue 17 item 4): a chat server as the
// Socket.IO guides build one. Each process is a Socket.IO server with @socket.io/redis-streams-adapter on the
// run's Redis (so a room broadcast reaches the members on the other process); a client names its user and
// its groups in the handshake's `auth` ({user, rooms}) and joins one room per group; `message:send` is one
// `insertOne` into FerretDB (a database of its own), then `io.to(room).emit("message")` and the ack. No
// authentication, sequence numbers, partitions, broker, retries or offline delivery: what chat-node does more.
// Environment: PORT, REDIS_URL, MONGODB_URL, TEXTBOOK_DB. GET /ready answers 200 once the store is connected.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { Redis } from "ioredis";
import mongoose from "mongoose";
import { Server } from "socket.io";

interface Send {
  channelId: string;
  clientMsgId: string;
  body: string;
}

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

async function main(): Promise<void> {
  const redis = new Redis(env("REDIS_URL"));
  const conn = await mongoose
    .createConnection(env("MONGODB_URL"), { dbName: env("TEXTBOOK_DB") })
    .asPromise();
  const messages = conn.db!.collection<{ _id: string }>("messages");
  const http = createServer((req, res) => {
    res.writeHead(req.url === "/ready" ? 200 : 404).end();
  });
  const io = new Server(http, { adapter: createAdapter(redis) });
  io.on("connection", (socket) => {
    const auth = socket.handshake.auth as { user?: string; rooms?: string[] };
    const user = String(auth.user ?? socket.id);
    void socket.join(auth.rooms ?? []);
    socket.on("message:send", async (m: Send, ack: (r: unknown) => void) => {
      try {
        const doc = {
          _id: randomBytes(12).toString("hex"),
          channelId: m.channelId,
          senderId: user,
          clientMsgId: m.clientMsgId,
          body: m.body,
          createdAt: new Date(),
        };
        await messages.insertOne(doc);
        const message = { ...doc, id: doc._id, createdAt: doc.createdAt.toISOString(), seq: 0 };
        io.to(m.channelId).emit("message", message);
        ack({ ok: true, message: { id: doc._id } });
      } catch (err) {
        ack({ ok: false, error: { code: "INTERNAL", message: String(err) } });
      }
    });
  });
  const stop = () => {
    void io.close();
    void conn.close();
    redis.disconnect();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  http.listen(Number(env("PORT")), "127.0.0.1");
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
