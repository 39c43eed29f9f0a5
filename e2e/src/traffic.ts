import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { io, type Socket } from "socket.io-client";

export interface Member {
  id: string;
  token: string;
}

export interface ChatMessage {
  channelId: string;
  seq: number;
  clientMsgId: string;
  body: string;
  senderId: string;
}

type NodeList = () => Promise<{ name: string; url: string }[]>;

async function json<T>(res: Response): Promise<T> {
  if (!res.ok) throw new Error(`${res.url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export async function register(url: string, username: string): Promise<Member> {
  const r = await json<{ token: string; user: { id: string } }>(
    await fetch(`${url}/api/v1/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password: "password-123" }),
    }),
  );
  return { id: r.user.id, token: r.token };
}

export async function createGroup(
  url: string,
  owner: Member,
  name: string,
  members: Member[],
): Promise<string> {
  const r = await json<{ channel: { id: string } }>(
    await fetch(`${url}/api/v1/channels`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${owner.token}` },
      body: JSON.stringify({ type: "group", name, memberIds: members.map((m) => m.id) }),
    }),
  );
  return r.channel.id;
}

/** Every stored message of a channel, paged by `afterSeq` through the REST API. */
export async function history(url: string, member: Member, channelId: string): Promise<ChatMessage[]> {
  const out: ChatMessage[] = [];
  for (;;) {
    const after = out.at(-1)?.seq ?? 0;
    const page = await json<{ messages: ChatMessage[] }>(
      await fetch(`${url}/api/v1/channels/${channelId}/messages?afterSeq=${after}&limit=100`, {
        headers: { authorization: `Bearer ${member.token}` },
      }),
    );
    out.push(...page.messages);
    if (page.messages.length < 100) return out;
  }
}

/**
 * A client that follows the cluster: it connects to a Ready chat-node, and when that node drains (`reconnect`)
 * or goes away, connects to another one. Live `message` events are recorded (duplicates included).
 */
export class RoamingClient {
  socket: Socket | null = null;
  readonly received: ChatMessage[] = [];
  /** When each `channelId:seq` first reached this client, live or by `sync` (for send→deliver times). */
  readonly firstSeen = new Map<string, number>();
  reconnects = 0;
  private closed = false;

  /**
   * `syncChannels`: channels this client follows; after every reconnect it asks `sync` for what it missed, as
   * a real client does, and keeps reconnecting by itself when its node drains or dies.
   */
  constructor(
    private readonly member: Member,
    private readonly nodes: NodeList,
    private readonly syncChannels: string[] = [],
  ) {}

  private record(messages: ChatMessage[]): void {
    const now = Date.now();
    for (const m of messages) {
      this.received.push(m);
      const key = `${m.channelId}:${m.seq}`;
      if (!this.firstSeen.has(key)) this.firstSeen.set(key, now);
    }
  }

  private lastSeq(channelId: string): number {
    return this.received.reduce((max, m) => (m.channelId === channelId && m.seq > max ? m.seq : max), 0);
  }

  private async sync(s: Socket): Promise<void> {
    for (let round = 0; round < 100; round++) {
      const channels = this.syncChannels.map((channelId) => ({
        channelId,
        afterSeq: this.lastSeq(channelId),
      }));
      const reply = (await s.timeout(10_000).emitWithAck("sync", { channels })) as {
        ok: boolean;
        messages?: ChatMessage[];
        more?: string[];
      };
      if (!reply.ok) throw new Error(`sync refused: ${JSON.stringify(reply)}`);
      this.record(reply.messages ?? []);
      if ((reply.more ?? []).length === 0) return;
    }
  }

  private rejoin(): void {
    if (this.closed || this.syncChannels.length === 0) return;
    this.reconnects += 1;
    void this.connect()
      .then((s) => this.sync(s))
      .catch(() => this.rejoin());
  }

  async connect(): Promise<Socket> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new Error("client closed");
      const list = await this.nodes().catch(() => []);
      const node = list[Math.floor(Math.random() * list.length)];
      if (node) {
        const s = io(node.url, {
          auth: { token: this.member.token },
          transports: ["websocket"],
          reconnection: false,
          timeout: 3000,
        });
        const ok = await new Promise<boolean>((resolve) => {
          s.once("connect", () => resolve(true));
          s.once("connect_error", () => resolve(false));
        });
        if (ok) {
          s.on("message", (m: ChatMessage) => this.record([m]));
          const drop = (): void => {
            if (this.socket !== s) return;
            this.socket = null;
            s.disconnect();
            this.rejoin();
          };
          s.on("reconnect", drop);
          s.on("disconnect", drop);
          this.socket = s;
          return s;
        }
        s.disconnect();
      }
      if (attempt > 300) throw new Error("no chat-node accepted a connection for 60 s");
      await sleep(200);
    }
  }

  async live(): Promise<Socket> {
    if (this.socket?.connected) return this.socket;
    this.reconnects += 1;
    return this.connect();
  }

  close(): void {
    this.closed = true;
    this.socket?.disconnect();
  }
}

export interface SentRecord {
  channelId: string;
  clientMsgId: string;
  acked: boolean;
  attempts: number;
  /** Date.now() of the first attempt. */
  sentAt: number;
}

/**
 * Steady traffic: one message at a time, round robin over the channels, every send retried with the same
 * clientMsgId until acked (a lost ack, a drained or killed node), at about `perSecond`.
 */
export class SteadySender {
  readonly sent: SentRecord[] = [];
  private running = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: RoamingClient,
    private readonly channels: string[],
    private readonly perSecond: number,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async run(): Promise<void> {
    for (let i = 0; this.running; i++) {
      const channelId = this.channels[i % this.channels.length]!;
      const rec: SentRecord = {
        channelId,
        clientMsgId: `m${i}`,
        acked: false,
        attempts: 0,
        sentAt: Date.now(),
      };
      this.sent.push(rec);
      while (!rec.acked) {
        rec.attempts += 1;
        try {
          const s = await this.client.live();
          const reply = (await s.timeout(5000).emitWithAck("message:send", {
            channelId,
            clientMsgId: rec.clientMsgId,
            body: `steady ${i}`,
          })) as { ok: boolean };
          rec.acked = reply.ok;
        } catch {
          /* timeout or disconnect: retry the same clientMsgId */
        }
        if (!rec.acked) await sleep(100);
      }
      await sleep(1000 / this.perSecond);
    }
  }
}

export interface DeliveryReport {
  acked: number;
  stored: number;
  retried: number;
  lost: number;
}

/**
 * I1–I3 after steady traffic: every message the sender sent (each retried until acked) is stored exactly
 * once, in send order, with gap-free seqs, and reached the reader live or by `sync` after its reconnects,
 * no seq carrying two different messages. Throws on the first breach; returns the counts.
 */
export async function verifyDelivery(
  url: string,
  reader: Member,
  readerClient: RoamingClient,
  steady: SteadySender,
  channels: string[],
): Promise<DeliveryReport> {
  const acked = steady.sent.filter((s) => s.acked);
  assert.ok(acked.length > 100, `only ${acked.length} messages acked`);
  let stored = 0;
  let retried = 0;
  for (const channelId of channels) {
    const messages = await history(url, reader, channelId);
    const sentHere = steady.sent.filter((s) => s.channelId === channelId);
    stored += messages.length;
    retried += sentHere.filter((s) => s.attempts > 1).length;
    assert.deepEqual(
      messages.map((m) => m.seq),
      messages.map((_, i) => i + 1),
      "gap-free seq",
    );
    assert.deepEqual(
      messages.map((m) => m.clientMsgId),
      sentHere.map((s) => s.clientMsgId),
      "each sent message stored once, in send order",
    );
    const live = new Map<number, string>();
    for (const m of readerClient.received.filter((r) => r.channelId === channelId)) {
      const seen = live.get(m.seq);
      assert.ok(
        seen === undefined || seen === m.clientMsgId,
        `seq ${m.seq} delivered with two different messages`,
      );
      live.set(m.seq, m.clientMsgId);
    }
    assert.deepEqual(
      messages.filter((m) => !live.has(m.seq)).map((m) => m.seq),
      [],
      `delivered to the reader live or by sync after ${readerClient.reconnects} reconnects`,
    );
  }
  return { acked: acked.length, stored, retried, lost: acked.length - stored };
}
