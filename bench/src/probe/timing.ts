// Preload for chat-node processes (`node --import`), used by the latency probe only: wraps the methods on
// a message's path (the same module instances chat-node loads) and writes one JSON line per call with
// its wall-clock start and end to PROBE_FILE (`{node}` in it becomes NODE_ID). The modules are those of
// the chat-node folder PROBE_CHAT_NODE_DIR names (the one the process runs). Nothing in chat-node is
// edited; a method that is gone is reported as missing instead of failing the run.
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export interface ProbeRecord {
  /** Class.method */
  name: string;
  start: number;
  end: number;
  /** clientMsgIds the call concerns. */
  ids?: string[];
  n?: number;
}

const file = process.env.PROBE_FILE?.replace("{node}", process.env.NODE_ID ?? String(process.pid));
const dir = process.env.PROBE_CHAT_NODE_DIR;
if (!dir) throw new Error("PROBE_CHAT_NODE_DIR is not set");
const load = async <T>(path: string): Promise<T> =>
  (await import(pathToFileURL(join(dir, "src", path)).href)) as T;
type Cls = { prototype: object; name: string };
const { MongoStore } = await load<{ MongoStore: Cls }>("adapters/mongo-store.ts");
const { RabbitBroker } = await load<{ RabbitBroker: Cls }>("adapters/rabbit-broker.ts");
const { SocketGateway } = await load<{ SocketGateway: Cls }>("gateway/socket-gateway.ts");
const { PartitionConsumer } = await load<{ PartitionConsumer: Cls }>("partitions/consumer.ts");
const { ChatService } = await load<{ ChatService: Cls }>("services/chat-service.ts");
const { MembersCache } = await load<{ MembersCache: Cls }>("services/members-cache.ts");
const now = (): number => performance.timeOrigin + performance.now();
let buffer: string[] = [];
const flush = (): void => {
  if (!file || buffer.length === 0) return;
  appendFileSync(file, buffer.join(""));
  buffer = [];
};
const push = (r: ProbeRecord): void => {
  buffer.push(`${JSON.stringify(r)}\n`);
};
setInterval(flush, 250).unref();
process.on("exit", flush);

type Describe = (args: unknown[]) => Partial<ProbeRecord>;
type Method = (...args: unknown[]) => unknown;

function wrap(cls: Cls, method: string, describe: Describe = () => ({}), optional = false): void {
  const proto = cls.prototype as Record<string, Method | undefined>;
  const original = proto[method];
  const name = `${cls.name}.${method}`;
  if (typeof original !== "function") {
    if (optional) return;
    push({ name: `missing:${name}`, start: now(), end: now() });
    return;
  }
  proto[method] = function (this: unknown, ...args: unknown[]): unknown {
    const start = now();
    const out = original.apply(this, args);
    if (out instanceof Promise) {
      return out.finally(() => push({ name, start, end: now(), ...safe(describe, args) }));
    }
    push({ name, start, end: now(), ...safe(describe, args) });
    return out;
  };
}

function safe(describe: Describe, args: unknown[]): Partial<ProbeRecord> {
  try {
    return describe(args);
  } catch {
    return {};
  }
}

type WithClientMsgId = { clientMsgId?: string } | null | undefined;
const idsOfDeliveries = (a: unknown[]): Partial<ProbeRecord> => {
  const list = (Array.isArray(a[0]) ? a[0] : [a[0]]) as { message?: WithClientMsgId }[];
  return { ids: list.map((d) => d.message?.clientMsgId ?? "?"), n: list.length };
};
const idsOfDocs = (a: unknown[]): Partial<ProbeRecord> => {
  const docs = a[0] as { clientMsgId: string }[];
  return { ids: docs.map((d) => d.clientMsgId), n: docs.length };
};
const idOfEvent = (a: unknown[]): Partial<ProbeRecord> => {
  const e = a[0] as {
    t?: string;
    message?: WithClientMsgId;
    event?: { t?: string; message?: WithClientMsgId };
  };
  const m = e.message ?? e.event?.message;
  return m?.clientMsgId ? { ids: [m.clientMsgId] } : {};
};

// The send: gateway → service → confirmed publish to the partition.
wrap(ChatService, "send", (a) => ({ ids: [(a[1] as { clientMsgId: string }).clientMsgId] }));
wrap(RabbitBroker, "publishToPartition", (a) => ({ ids: [(a[1] as { clientMsgId: string }).clientMsgId] }));
// The owner: arrival of each delivery, then the batch and its parts.
wrap(PartitionConsumer, "onDelivery", idsOfDeliveries);
wrap(PartitionConsumer, "processBatch", idsOfDeliveries);
wrap(MongoStore, "lastSeq");
wrap(MongoStore, "lastMessage", () => ({}), true);
wrap(MongoStore, "insertOrdered", idsOfDocs);
wrap(MongoStore, "findByClientMsgId");
wrap(MongoStore, "raiseChannelHeads", (a) => ({ n: (a[0] as unknown[]).length }));
wrap(MembersCache, "get");
wrap(RabbitBroker, "publishToUsers", idOfEvent);
// The receiving nodes: an event from the node queue, emitted to local sockets.
wrap(SocketGateway, "deliver", idOfEvent);
