// What a connection leaves on a server's V8 heap: two heap snapshots of one process (before the clients
// connect, and once they are held; node's --heapsnapshot-signal), their self sizes summed by node type and
// constructor name, the difference ÷ connections. Used by connections.ts when BENCH_HEAP_SNAPSHOTS names a
// folder (a diagnostic run: writing a snapshot stops the process for seconds, so its other figures are
// not recorded). Also `node --import tsx bench/src/heap-diff.ts <before> <after> <connections>`.
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size and count by "type name" (objects, closures and native by constructor; strings as one). */
export async function heapByKind(file: string): Promise<Map<string, { bytes: number; count: number }>> {
  const s = JSON.parse(await readFile(file, "utf8")) as Snapshot;
  const f = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [iType, iName, iSize, width] = [
    f.indexOf("type"),
    f.indexOf("name"),
    f.indexOf("self_size"),
    f.length,
  ];
  const out = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!] ?? "?";
    const named = type === "object" || type === "closure" || type === "native" || type === "hidden";
    const key = named ? `${type} ${s.strings[s.nodes[i + iName]!]?.slice(0, 60)}` : type;
    const e = out.get(key) ?? { bytes: 0, count: 0 };
    e.bytes += s.nodes[i + iSize]!;
    e.count += 1;
    out.set(key, e);
  }
  return out;
}

export interface HeapDelta {
  kind: string;
  bytesPerConnection: number;
  countPerConnection: number;
}

/** The kinds that grew most from `before` to `after`, per connection, and the total growth per connection. */
export async function heapDiff(
  before: string,
  after: string,
  connections: number,
  top = 15,
): Promise<{ totalPerConnection: number; rows: HeapDelta[] }> {
  const a = await heapByKind(before);
  const b = await heapByKind(after);
  const rows: HeapDelta[] = [];
  let total = 0;
  for (const [kind, v] of b) {
    const w = a.get(kind) ?? { bytes: 0, count: 0 };
    total += v.bytes - w.bytes;
    rows.push({
      kind,
      bytesPerConnection: (v.bytes - w.bytes) / connections,
      countPerConnection: (v.count - w.count) / connections,
    });
  }
  for (const [kind, w] of a) if (!b.has(kind)) total -= w.bytes;
  rows.sort((x, y) => y.bytesPerConnection - x.bytesPerConnection);
  return { totalPerConnection: total / connections, rows: rows.slice(0, top) };
}

/** Sends SIGUSR2 to a process started with --heapsnapshot-signal=SIGUSR2 and waits for the file. */
export async function takeHeapSnapshot(pid: number, dir: string): Promise<string> {
  const mine = async () =>
    (await readdir(dir)).filter((n) => n.includes(`.${pid}.`) && n.endsWith(".heapsnapshot"));
  const known = new Set(await mine());
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 600; i++) {
    await sleep(500);
    const fresh = (await mine()).find((n) => !known.has(n));
    if (!fresh) continue;
    const file = join(dir, fresh);
    let size = -1;
    for (;;) {
      await sleep(1000);
      const now = (await stat(file)).size;
      if (now === size && now > 0) return file;
      size = now;
    }
  }
  throw new Error(`no heap snapshot from pid ${pid} in 300 s`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [before, after, n] = process.argv.slice(2);
  const r = await heapDiff(before!, after!, Number(n));
  console.log(`heap growth per connection: ${(r.totalPerConnection / 1024).toFixed(1)} KiB`);
  for (const x of r.rows)
    console.log(
      `${(x.bytesPerConnection / 1024).toFixed(2)} KiB  ${x.countPerConnection.toFixed(2)}×  ${x.kind}`,
    );
}
