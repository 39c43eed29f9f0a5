import { chown, mkdir } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { ManagedProcess, ServiceStartError, run, tcpOpen, tempDir, waitUntil } from "./process.js";
import { systemBinary, toolPath } from "./tools.js";

export interface MongoService {
  /** mongodb://127.0.0.1:PORT/<database> */
  url: string;
  port: number;
  postgresUrl: string;
  /** Kills FerretDB and starts it again on the same port; PostgreSQL (the data) stays up. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  logTail(): string;
}

const PG_BIN = "/usr/lib/postgresql/15/bin";

/** PostgreSQL refuses to run as root: when we are root, run it as the `postgres` system user. */
async function postgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (userInfo().uid !== 0) return undefined;
  const uid = Number(await run("id", ["-u", "postgres"]));
  const gid = Number(await run("id", ["-g", "postgres"]));
  return { uid, gid };
}

/**
 * Starts a private PostgreSQL 15 cluster (fsync off: test data only) and FerretDB v1 in front of it, both on
 * free loopback ports. MongoDB clients talk to FerretDB.
 */
/** FerretDB listens on `options.host` (default 127.0.0.1); its PostgreSQL on loopback only. */
export async function startMongo(options: { database?: string; host?: string } = {}): Promise<MongoService> {
  const host = options.host ?? "127.0.0.1";
  const initdb = systemBinary([join(PG_BIN, "initdb")], "postgresql-15");
  const postgres = systemBinary([join(PG_BIN, "postgres")], "postgresql-15");
  const ferretdb = toolPath("ferretdb");
  const dir = await tempDir("mongo");
  const owner = await postgresUser();
  const pgData = join(dir.path, "pgdata");
  const sockets = join(dir.path, "sockets");
  await mkdir(sockets);
  if (owner) {
    await chown(dir.path, owner.uid, owner.gid);
    await chown(sockets, owner.uid, owner.gid);
  }
  const asPg = owner ?? {};
  const init = new ManagedProcess({
    name: "initdb",
    command: initdb,
    args: ["-D", pgData, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"],
    logFile: join(dir.path, "initdb.log"),
    ...asPg,
  });
  await init.waitExit(60_000);
  if (init.exitCode !== 0) {
    throw new ServiceStartError("postgresql initdb", `exit code ${init.exitCode}`, init.logTail());
  }
  const pgPort = await freePort();
  const pg = new ManagedProcess({
    name: "postgresql",
    command: postgres,
    args: [
      "-D",
      pgData,
      "-p",
      String(pgPort),
      "-k",
      sockets,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
      "-c",
      "max_connections=200",
      "-c",
      "shared_buffers=256MB",
    ],
    logFile: join(dir.path, "postgresql.log"),
    ...asPg,
  });
  await waitUntil("postgresql", pg, () => tcpOpen(pgPort), 30_000, 100);
  const postgresUrl = `postgres://postgres@127.0.0.1:${pgPort}/postgres`;
  const port = await freePort();
  let ferret: ManagedProcess;
  const launch = async (): Promise<void> => {
    ferret = new ManagedProcess({
      name: "ferretdb",
      command: ferretdb,
      args: [`--listen-addr=${host}:${port}`, `--postgresql-url=${postgresUrl}`],
      logFile: join(dir.path, "ferretdb.log"),
    });
    await waitUntil("ferretdb", ferret, () => tcpOpen(port, host), 30_000, 100);
  };
  await launch();
  return {
    url: `mongodb://${host}:${port}/${options.database ?? "vibetalk"}`,
    port,
    postgresUrl,
    logTail: () => `${ferret.logTail()}\n--- postgresql ---\n${pg.logTail(15)}`,
    restart: async () => {
      ferret.killGroupNow();
      await ferret.waitExit(5_000);
      await launch();
    },
    stop: async () => {
      await ferret.stop();
      await pg.stop(10_000);
      await dir.remove();
    },
  };
}
