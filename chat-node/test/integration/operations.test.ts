// Operations: graceful drain of a chat-node process, tracing send → store → deliver, and
// dependency outages (Redis, the store) with readiness following them.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Message } from "@vibetalk/protocol";
import type { ChatNode } from "../../src/node.js";
import { ChildNode } from "../support/child-node.js";
import {
  http,
  sleep,
  startNode,
  startServices,
  TestSocket,
  TestUser,
  waitFor,
  type Services,
} from "../support/harness.js";

let services: Services;
before(async () => {
  services = await startServices();
});
after(async () => {
  await services?.stop();
});

describe("drain", () => {
  test("SIGTERM: readiness off, handshakes refused, sockets told to reconnect, partitions released, exit 0", async () => {
    const a = await ChildNode.start(services, {
      OWNED_PARTITIONS: "all",
      NODE_ID: "drain-a",
      DRAIN_SECONDS: "6",
    });
    const b = await ChildNode.start(services, { OWNED_PARTITIONS: "none", NODE_ID: "drain-b" });
    try {
      const ann = await TestUser.register(a);
      const ben = await TestUser.register(b);
      const ch = await ann.direct(a, ben);
      const sa = await ann.connect(a);
      const sb = await ben.connect(b);
      const acked: string[] = [];
      for (let i = 0; i < 20; i++) if ((await sa.send(ch.id, `m${i}`, `d${i}`)).ok) acked.push(`d${i}`);
      const t0 = Date.now();
      a.proc.signal("SIGTERM");
      await sa.waitEvent("reconnect", (e: { reason?: string }) => e.reason === "draining", 5000);
      const ready = await http(a.opsUrl, "GET", "/readyz");
      assert.equal(ready.status, 503);
      await assert.rejects(
        TestSocket.open(a.url, ann.token),
        (e: { data?: { code?: string } }) => e.data?.code === "UNAVAILABLE",
      );
      // The client goes elsewhere, as told, and keeps chatting.
      sa.close();
      const sa2 = await ann.connect(b);
      assert.equal((await sa2.send(ch.id, "after the drain", "d-after")).ok, true);
      assert.equal(await a.proc.waitExit(15_000), true, "exited");
      assert.equal(a.proc.exitCode, 0);
      assert.ok(Date.now() - t0 < 11_000, "within the grace period");
      // A new owner picks the partitions up; nothing acked was lost.
      const a2 = await ChildNode.start(services, { OWNED_PARTITIONS: "all", NODE_ID: "drain-a2" });
      try {
        await sb.waitEvent<Message>("message", (m) => m.clientMsgId === "d-after", 20_000);
        const stored = (
          await ben.api<{ messages: Message[] }>(b, "GET", `/channels/${ch.id}/messages?limit=100`)
        ).body.messages;
        assert.deepEqual(
          stored.map((m) => m.seq),
          Array.from({ length: acked.length + 1 }, (_, i) => i + 1),
        );
        assert.deepEqual(
          stored.map((m) => m.clientMsgId),
          [...acked, "d-after"],
        );
      } finally {
        await a2.stop();
      }
      ann.closeAll();
      ben.closeAll();
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe("tracing", () => {
  test("with OTEL_EXPORTER_OTLP_ENDPOINT a message is one trace: send → store → deliver", async () => {
    const spans: Array<{ name: string; traceId: string; spanId: string; parentSpanId?: string }> = [];
    const collector: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
            resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: typeof spans }> }>;
          };
          for (const rs of body.resourceSpans ?? [])
            for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
        } catch {
          // not JSON: ignore
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((r) => collector.listen(0, "127.0.0.1", r));
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    const node = await ChildNode.start(services, {
      OWNED_PARTITIONS: "all",
      NODE_ID: "traced",
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_BSP_SCHEDULE_DELAY: "200",
    });
    try {
      const ann = await TestUser.register(node);
      const ben = await TestUser.register(node);
      const ch = await ann.direct(node, ben);
      const sa = await ann.connect(node);
      const sb = await ben.connect(node);
      await sa.send(ch.id, "traced");
      await sb.waitMessages(ch.id, 1);
      const trace = await waitFor(
        "spans",
        () => {
          const send = spans.find((s) => s.name === "message.send");
          if (!send) return undefined;
          const same = spans.filter((s) => s.traceId === send.traceId).map((s) => s.name);
          return same.includes("message.store") && same.includes("message.deliver") ? same : undefined;
        },
        15_000,
      );
      assert.ok(trace.includes("message.send"));
      ann.closeAll();
      ben.closeAll();
    } finally {
      await node.stop();
      collector.close();
    }
  });
});

describe("dependency outages", () => {
  let A: ChatNode;
  let B: ChatNode;
  before(async () => {
    A = await startNode(services, {
      OWNED_PARTITIONS: "all",
      LIMIT_SEND_RATE: "1000",
      LIMIT_SEND_BURST: "1000",
    });
    B = await startNode(services);
  });
  after(async () => {
    await A?.stop();
    await B?.stop();
  });

  const readiness = async (n: ChatNode) =>
    (await http<{ ready: boolean; checks: Record<string, boolean> }>(n.opsUrl, "GET", "/readyz")).body;

  test("Redis restart: not ready while it is down, typing and presence work again after", async () => {
    const ann = await TestUser.register(A);
    const ben = await TestUser.register(B);
    const ch = await ann.direct(A, ben);
    const sa = await ann.connect(A);
    const sb = await ben.connect(B);
    const down = services.redis.restart();
    await waitFor(
      "not ready",
      async () => (await readiness(A)).checks["redis"] === false || undefined,
      10_000,
    ).catch(() => undefined);
    await down;
    await waitFor("ready again", async () => (await readiness(A)).ready || undefined, 30_000);
    await waitFor("ready again B", async () => (await readiness(B)).ready || undefined, 30_000);
    // The adapter reconnects: typing crosses nodes again.
    await waitFor(
      "typing after the restart",
      async () => {
        await sa.emit("typing", { channelId: ch.id, typing: true });
        await sleep(200);
        return sb.of("typing").length > 0 || undefined;
      },
      30_000,
    );
    // Messages never depended on Redis.
    assert.equal((await sa.send(ch.id, "after redis")).ok, true);
    await sb.waitEvent<Message>("message", (m) => m.body === "after redis");
    ann.closeAll();
    ben.closeAll();
  });

  test("store restart under load: sends keep being acked, everything is stored once, gap-free", async () => {
    const ann = await TestUser.register(A);
    const ben = await TestUser.register(B);
    const ch = await ann.direct(A, ben);
    const sa = await ann.connect(A);
    const sb = await ben.connect(B);
    const acked: string[] = [];
    let stop = false;
    const sending = (async () => {
      for (let i = 0; !stop; i++) {
        const id = `s${String(i).padStart(5, "0")}`;
        const r = await sa.send(ch.id, `m${i}`, id).catch(() => ({ ok: false }));
        if (r.ok) acked.push(id);
        else await sleep(50);
      }
    })();
    await waitFor("traffic", () => sb.messages(ch.id).length > 30 || undefined, 20_000);
    await services.mongo.restart();
    await sleep(1000);
    stop = true;
    await sending;
    await waitFor(
      "all stored",
      async () => {
        const r = await ann.api<{ messages: Message[] }>(
          B,
          "GET",
          `/channels/${ch.id}/messages?afterSeq=${acked.length - 1}&limit=5`,
        );
        return (r.status === 200 && r.body.messages.length === 1) || undefined;
      },
      60_000,
    );
    const all: Message[] = [];
    for (let after = 0; ;) {
      const r = await ann.api<{ messages: Message[] }>(
        B,
        "GET",
        `/channels/${ch.id}/messages?afterSeq=${after}&limit=100`,
      );
      all.push(...r.body.messages);
      if (r.body.messages.length < 100) break;
      after = all[all.length - 1]?.seq ?? 0;
    }
    assert.deepEqual(
      all.map((m) => m.seq),
      Array.from({ length: acked.length }, (_, i) => i + 1),
    );
    assert.deepEqual(
      all.map((m) => m.clientMsgId),
      acked,
    );
    await waitFor("ready", async () => (await readiness(A)).ready || undefined, 30_000);
    console.log(`store restart: ${acked.length} acked and stored`);
    ann.closeAll();
    ben.closeAll();
  });
});
