// PostgreSQL's statement log, read from outside: the testkit's PostgreSQL (behind FerretDB) writes its
// log to `postgresql.log` next to its data folder; `log_min_duration_statement = 0` makes it log every
// statement FerretDB sends, with its server-side duration and a millisecond timestamp.
import { readFile, readdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { runCommand } from "@vibetalk/testkit";

const PSQL = "/usr/lib/postgresql/15/bin/psql";

export interface PgStatement {
  /** Wall-clock ms since the epoch (millisecond resolution). */
  at: number;
  pid: number;
  durationMs: number;
  /** parse / bind / execute (extended protocol) or statement. */
  phase: string;
  sql: string;
}

async function psql(port: number, sql: string): Promise<string> {
  const r = await runCommand(PSQL, ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-Atqc", sql], {
    timeoutMs: 15_000,
  });
  if (r.code !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout;
}

/** The data folder of the postgres process listening on `port`, from /proc. */
async function dataDirOf(port: number): Promise<string> {
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let args: string[];
    try {
      args = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    } catch {
      continue;
    }
    if (!args[0]?.endsWith("/postgres")) continue;
    const p = args.indexOf("-p");
    const d = args.indexOf("-D");
    if (p >= 0 && d >= 0 && args[p + 1] === String(port)) return args[d + 1]!;
  }
  throw new Error(`no postgres process on port ${port}`);
}

export class PgStatementLog {
  private constructor(
    private readonly file: string,
    private readonly port: number,
  ) {}

  /** Turns on the statement log of the PostgreSQL behind `postgresUrl` (a reload, no restart). */
  static async enable(postgresUrl: string): Promise<PgStatementLog> {
    const port = Number(new URL(postgresUrl).port);
    const file = join(dirname(await dataDirOf(port)), "postgresql.log");
    await psql(port, "ALTER SYSTEM SET log_min_duration_statement = 0");
    await psql(port, "ALTER SYSTEM SET log_line_prefix = '%m [%p] '");
    await psql(port, "ALTER SYSTEM SET log_parameter_max_length = 0");
    await psql(port, "ALTER SYSTEM SET log_timezone = 'UTC'");
    await psql(port, "SELECT pg_reload_conf()");
    return new PgStatementLog(file, port);
  }

  async disable(): Promise<void> {
    await psql(this.port, "ALTER SYSTEM RESET log_min_duration_statement");
    await psql(this.port, "SELECT pg_reload_conf()");
  }

  /** The current end of the log: statements logged later are read with `since(mark)`. */
  async mark(): Promise<number> {
    return (await stat(this.file)).size;
  }

  async since(offset: number): Promise<PgStatement[]> {
    const text = (await readFile(this.file)).subarray(offset).toString("utf8");
    const out: PgStatement[] = [];
    const head =
      /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (\w+) \[(\d+)\] LOG: {2}duration: ([\d.]+) ms {2}(\w+)[^:]*: ([\s\S]*)$/;
    // A log entry may span lines (SQL with newlines): continuation lines start with a tab.
    const entries: string[] = [];
    for (const line of text.split("\n")) {
      if (line.startsWith("\t") && entries.length > 0) entries[entries.length - 1] += ` ${line.trim()}`;
      else entries.push(line);
    }
    for (const e of entries) {
      const m = head.exec(e);
      if (!m) continue;
      out.push({
        at: Date.parse(`${m[1]!.replace(" ", "T")}Z`),
        pid: Number(m[3]),
        durationMs: Number(m[4]),
        phase: m[5]!,
        sql: m[6]!.trim(),
      });
    }
    return out;
  }
}
