/**
 * The parked queue, for operators: list, replay and discard the messages chat-nodes set aside
 * instead of storing them (docs/chat-node.md, "Parked messages").
 *
 *   node --import tsx chat-node/src/admin/parked.ts list
 *   node --import tsx chat-node/src/admin/parked.ts replay --id <id> [--id <id> …] | --all
 *   node --import tsx chat-node/src/admin/parked.ts discard --id <id> [--id <id> …] | --all
 *
 * In a chat-node container: `node dist/main.js parked list` (same arguments). The broker is
 * RABBITMQ_URL (or `--url`). `list` prints one JSON object per message on stdout; `replay` and
 * `discard` print the messages they handled. Replay publishes the original message, unchanged
 * except for the parking headers, to its partition with publisher confirms and only then removes it
 * from the parked queue; a message replayed twice is stored once (its clientMsgId).
 */
import { connect, type Channel, type ConfirmChannel, type GetMessage } from "amqplib";
import { PARKED_HEADERS } from "../adapters/rabbit-broker.js";
import { topology } from "../domain/fanout.js";
import { partitionOf } from "../domain/hashing.js";

export interface ParkedEntry {
  /** The message id (stable across a repeated park); what --id takes. */
  id: string;
  /** Where it is replayed to. */
  partition: number | null;
  /** refused | attempts | deliveries | malformed, or the broker's (delivery_limit, …) when RabbitMQ dead-lettered it. */
  reason: string;
  error: string;
  attempts: number;
  deliveries: number;
  parkedAt: string | null;
  node: string | null;
  channelId: string | null;
  senderId: string | null;
  clientMsgId: string | null;
  /** The body, cut to 200 characters, with control characters shown as \u escapes. */
  body: string | null;
  /** Times RabbitMQ delivered this copy from the parked queue (each list counts one). */
  parkedDeliveries: number;
}

type Action = "keep" | "replay" | "discard";

function header(h: Record<string, unknown>, k: string): unknown {
  const v = h[k];
  return Buffer.isBuffer(v) ? v.toString() : v;
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : null;
}

function partitionFromQueue(name: unknown): number | null {
  const m = typeof name === "string" ? /^vibetalk\.partition\.(\d+)$/.exec(name) : null;
  return m ? Number(m[1]) : null;
}

function escapeControls(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** What a parked message is, from its headers and body (pure). */
export function describeParked(
  m: Pick<GetMessage, "content" | "properties">,
  partitions?: number,
): ParkedEntry {
  const h = (m.properties.headers ?? {}) as Record<string, unknown>;
  let body: unknown = null;
  try {
    body = JSON.parse(m.content.toString("utf8"));
  } catch {
    // malformed: shown without its fields
  }
  const fields = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
  const channelId = str(fields["channelId"]);
  const fromHeader = header(h, PARKED_HEADERS.partition);
  const partition =
    typeof fromHeader === "number"
      ? fromHeader
      : (partitionFromQueue(header(h, "x-first-death-queue")) ??
        (channelId && partitions ? partitionOf(channelId, partitions) : null));
  const text = str(fields["body"]);
  return {
    id: str(m.properties.messageId) ?? "",
    partition,
    reason: str(header(h, PARKED_HEADERS.reason)) ?? str(header(h, "x-first-death-reason")) ?? "unknown",
    error:
      str(header(h, PARKED_HEADERS.error)) ??
      (header(h, "x-first-death-reason") ? "dead-lettered by RabbitMQ" : ""),
    attempts: Number(header(h, PARKED_HEADERS.attempts) ?? 0),
    deliveries: Number(header(h, PARKED_HEADERS.deliveries) ?? 0),
    parkedAt: str(header(h, PARKED_HEADERS.at)),
    node: str(header(h, PARKED_HEADERS.node)),
    channelId,
    senderId: str(fields["senderId"]),
    clientMsgId: str(fields["clientMsgId"]),
    body: text === null ? null : escapeControls(Array.from(text).slice(0, 200).join("")),
    parkedDeliveries: Number(header(h, "x-delivery-count") ?? 0),
  };
}

/** The headers a replayed message carries: its own, without what parking and the broker added. */
export function replayHeaders(h: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith("x-parked-") || k.startsWith("x-first-death-") || k.startsWith("x-last-death-"))
      continue;
    if (k === "x-death" || k === "x-delivery-count") continue;
    out[k] = v;
  }
  out["x-replayed-at"] = new Date().toISOString();
  return out;
}

async function publishConfirmed(
  ch: ConfirmChannel,
  returned: Set<string>,
  exchange: string,
  routingKey: string,
  m: GetMessage,
): Promise<void> {
  const messageId = str(m.properties.messageId) ?? undefined;
  await new Promise<void>((resolve, reject) => {
    ch.publish(
      exchange,
      routingKey,
      m.content,
      {
        persistent: true,
        mandatory: true,
        contentType: m.properties.contentType as string | undefined,
        ...(messageId ? { messageId } : {}),
        headers: replayHeaders((m.properties.headers ?? {}) as Record<string, unknown>),
      },
      (err: unknown) => {
        if (err) reject(new Error(`replay not confirmed: ${String(err)}`));
        else if (messageId && returned.delete(messageId)) reject(new Error(`unroutable: ${routingKey}`));
        else resolve();
      },
    );
  });
}

/**
 * Reads every message of the parked queue once, in order, and does `decide`'s action with it:
 * `keep` leaves it (returned to the queue when the channel closes), `replay` publishes it to its
 * partition (confirmed) and then acks it, `discard` acks it.
 */
async function walk(
  url: string,
  decide: (e: ParkedEntry) => Action,
  partitions?: number,
): Promise<Array<ParkedEntry & { action: Action }>> {
  const conn = await connect(url);
  conn.on("error", () => undefined);
  const out: Array<ParkedEntry & { action: Action }> = [];
  let getCh: Channel | undefined;
  try {
    getCh = await conn.createChannel();
    const pubCh = await conn.createConfirmChannel();
    const returned = new Set<string>();
    pubCh.on("return", (r: { properties: { messageId?: string } }) => {
      if (r.properties.messageId) returned.add(r.properties.messageId);
    });
    const { messageCount } = await getCh.checkQueue(topology.parkedQueue);
    for (let i = 0; i < messageCount; i++) {
      const m = await getCh.get(topology.parkedQueue, { noAck: false });
      if (!m) break;
      const entry = describeParked(m, partitions);
      let action = decide(entry);
      if (action === "replay" && entry.partition === null) {
        process.stderr.write(`parked ${entry.id}: no partition known (pass --partitions); kept\n`);
        action = "keep";
      }
      if (action === "replay")
        await publishConfirmed(pubCh, returned, topology.partitionExchange, String(entry.partition), m);
      if (action !== "keep") getCh.ack(m);
      out.push({ ...entry, action });
    }
    await pubCh.close();
  } finally {
    await getCh?.close().catch(() => undefined);
    await conn.close().catch(() => undefined);
  }
  return out;
}

export interface Selection {
  ids?: readonly string[];
  all?: boolean;
}

function selector(s: Selection, action: Action): (e: ParkedEntry) => Action {
  const ids = new Set(s.ids ?? []);
  return (e) => (s.all || ids.has(e.id) ? action : "keep");
}

export async function listParked(url: string, partitions?: number): Promise<ParkedEntry[]> {
  return walk(url, () => "keep", partitions);
}

export async function replayParked(url: string, s: Selection, partitions?: number): Promise<ParkedEntry[]> {
  return (await walk(url, selector(s, "replay"), partitions)).filter((e) => e.action === "replay");
}

export async function discardParked(url: string, s: Selection): Promise<ParkedEntry[]> {
  return (await walk(url, selector(s, "discard"))).filter((e) => e.action === "discard");
}

const USAGE = `usage: parked list | replay (--id <id>… | --all) | discard (--id <id>… | --all)
  [--url amqp://…] (default RABBITMQ_URL) [--partitions P] (default PARTITIONS; for messages without a partition)`;

interface Args {
  ids: string[];
  all: boolean;
  url: string | undefined;
  partitions: number | undefined;
}

/** The options, or what is wrong with them. */
function parseArgs(rest: readonly string[], env: Record<string, string | undefined>): Args | string {
  const a: Args = {
    ids: [],
    all: false,
    url: env["RABBITMQ_URL"],
    partitions: env["PARTITIONS"] ? Number(env["PARTITIONS"]) : undefined,
  };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const value = rest[i + 1];
    if (arg === "--all") a.all = true;
    else if (value === undefined) return `${arg ?? ""}: unknown argument or missing value`;
    else if (arg === "--id") a.ids.push(value);
    else if (arg === "--url") a.url = value;
    else if (arg === "--partitions") a.partitions = Number(value);
    else return `unknown argument ${arg}`;
    if (arg !== "--all") i++;
  }
  return a;
}

/** The command line; returns the exit code. */
export async function main(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): Promise<number> {
  const [command, ...rest] = argv;
  const args = parseArgs(rest, env);
  if (typeof args === "string") {
    process.stderr.write(`${args}\n${USAGE}\n`);
    return 2;
  }
  const { ids, all, url, partitions } = args;
  if (!url) {
    process.stderr.write(`RABBITMQ_URL (or --url) is required\n${USAGE}\n`);
    return 2;
  }
  if ((command === "replay" || command === "discard") && !all && ids.length === 0) {
    process.stderr.write(`${command} needs --id <id> or --all\n${USAGE}\n`);
    return 2;
  }
  let entries: ParkedEntry[];
  if (command === "list") entries = await listParked(url, partitions);
  else if (command === "replay") entries = await replayParked(url, { ids, all }, partitions);
  else if (command === "discard") entries = await discardParked(url, { ids, all });
  else {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  for (const e of entries) {
    const { action: _action, ...shown } = e as ParkedEntry & { action?: Action };
    out(JSON.stringify(shown));
  }
  const missing = ids.filter((id) => !entries.some((e) => e.id === id));
  process.stderr.write(`${command}: ${entries.length} message(s)\n`);
  if (missing.length > 0) {
    process.stderr.write(`not found in the parked queue: ${missing.join(", ")}\n`);
    return 1;
  }
  return 0;
}

if (/parked\.[cm]?[jt]s$/.test(process.argv[1] ?? "")) {
  process.exitCode = await main(process.argv.slice(2), process.env);
}
