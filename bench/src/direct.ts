// The `direct` load of the connection-scale benchmark (connections.ts): pairs of registered users, the two
// of a pair on different chat-nodes, each pair one direct channel; messages sent at a bounded total rate,
// round robin over the pairs and alternating sender, from sockets in this process (one clock). Every message
// goes to both members' sockets (the sender's own echo too). Counted per socket and channel: lost (acked
// but never delivered), duplicated (the same clientMsgId twice) and reordered (a seq not above the last).
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { io, type Socket } from "socket.io-client";
import { post, register, wallNow } from "./chat.js";
import { summarize, type Summary } from "./stats.js";

export interface DirectOptions {
  pairs: number;
  /** Messages per second over all pairs. */
  rate: number;
  seconds: number;
}

export interface DirectResult {
  pairs: number;
  sent: number;
  acked: number;
  refused: number;
  sendToAck: Summary;
  /** Measured at the peer's socket. */
  sendToDeliver: Summary;
  lost: number;
  duplicated: number;
  reordered: number;
  messagesPerSecond: number;
}

interface Member {
  id: string;
  token: string;
  node: number;
  socket?: Socket;
  seen: Set<string>;
  lastSeq: Map<string, number>;
}

/** Registers the pairs, opens their direct channels and sockets; `run` sends and counts; `close` ends. */
export async function prepareDirect(urls: string[], pairs: number) {
  const tag = randomBytes(3).toString("hex");
  const members: Member[] = [];
  for (let i = 0; i < 2 * pairs; i += 20) {
    members.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(20, 2 * pairs - i) }, async (_, j): Promise<Member> => {
          const node = (i + j) % urls.length;
          // from rotating loopback addresses: registration is limited per client address
          const r = await register(urls[node]!, `d${tag}_${i + j}`, `127.0.0.${2 + ((i + j) % 200)}`);
          return { id: r.user.id, token: r.token, node, seen: new Set(), lastSeq: new Map() };
        }),
      )),
    );
  }
  const channels = await Promise.all(
    Array.from({ length: pairs }, async (_, p) => {
      const [a, b] = [members[2 * p]!, members[2 * p + 1]!];
      const r = await post<{ channel: { id: string } }>(
        urls[a.node]!,
        "/channels",
        { type: "direct", userId: b.id },
        a.token,
      );
      return { id: r.channel.id, a, b };
    }),
  );
  const sentAt = new Map<string, number>();
  const deliverMs: number[] = [];
  let duplicated = 0;
  let reordered = 0;
  let runs = 0;
  await Promise.all(
    members.map(
      (m) =>
        new Promise<void>((resolve, reject) => {
          const s = io(urls[m.node]!, { auth: { token: m.token }, transports: ["websocket"] });
          s.on(
            "message",
            (msg: { clientMsgId: string; channelId: string; seq: number; senderId: string }) => {
              const t = sentAt.get(msg.clientMsgId);
              if (t === undefined) return;
              if (m.seen.has(msg.clientMsgId)) duplicated++;
              m.seen.add(msg.clientMsgId);
              if (msg.seq <= (m.lastSeq.get(msg.channelId) ?? 0)) reordered++;
              m.lastSeq.set(msg.channelId, Math.max(msg.seq, m.lastSeq.get(msg.channelId) ?? 0));
              if (msg.senderId !== m.id) deliverMs.push(wallNow() - t);
            },
          );
          s.once("connect", () => resolve());
          s.once("connect_error", reject);
          m.socket = s;
        }),
    ),
  );

  return {
    /** Sends for o.seconds at o.rate, waits up to 15 s for the last deliveries, counts. */
    async run(o: DirectOptions): Promise<DirectResult> {
      const ackMs: number[] = [];
      const acked: { id: string; members: Member[] }[] = [];
      let sent = 0;
      let refused = 0;
      const pending = new Set<Promise<void>>();
      const t0 = performance.now();
      const total = Math.round(o.rate * o.seconds);
      const run = runs++;
      deliverMs.length = 0;
      duplicated = 0;
      reordered = 0;
      for (let k = 0; k < total; k++) {
        const wait = t0 + (k * 1000) / o.rate - performance.now();
        if (wait > 0) await sleep(wait);
        const c = channels[k % channels.length]!;
        const from = Math.floor(k / channels.length) % 2 === 0 ? c.a : c.b;
        const clientMsgId = `${tag}-${run}-${k}`;
        sentAt.set(clientMsgId, wallNow());
        sent++;
        const p = (async () => {
          const reply = (await from
            .socket!.timeout(30_000)
            .emitWithAck("message:send", { channelId: c.id, clientMsgId, body: `direct ${k}` })
            .catch(() => ({ ok: false }))) as { ok: boolean };
          if (!reply.ok) {
            refused++;
            return;
          }
          ackMs.push(wallNow() - sentAt.get(clientMsgId)!);
          acked.push({ id: clientMsgId, members: [c.a, c.b] });
        })();
        pending.add(p);
        void p.finally(() => pending.delete(p));
      }
      await Promise.all(pending);
      const seconds = (performance.now() - t0) / 1000;
      const missing = () => acked.reduce((n, a) => n + a.members.filter((m) => !m.seen.has(a.id)).length, 0);
      for (let i = 0; i < 150 && missing() > 0; i++) await sleep(100);
      return {
        pairs: channels.length,
        sent,
        acked: acked.length,
        refused,
        sendToAck: summarize(ackMs),
        sendToDeliver: summarize(deliverMs),
        lost: missing(),
        duplicated,
        reordered,
        messagesPerSecond: sent / seconds,
      };
    },
    close(): void {
      for (const m of members) m.socket?.disconnect();
    },
  };
}
