// Centrifugo, the second baseline of the connection-scale benchmark (connections.ts): the binary built by
// scripts/centrifugo (cached; the run fails if it cannot be built), started on 127.0.0.1 and a free port with
// insecure clients (no token; any channel), its open-files limit raised like every
// other server's. The fleet's clients speak its JSON protocol over WebSocket at /connection/websocket.
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, ManagedProcess, repoRoot, waitUntil } from "@vibetalk/testkit";
import { withOpenFilesRaised } from "./client-fleet.js";

export interface Centrifugo {
  proc: ManagedProcess;
  /** The clients' WebSocket URL. */
  wsUrl: string;
  /** Clients connected now. */
  clients(): Promise<number>;
  /** The binary's file name, which names its version (centrifugo-5.4.9). */
  binary: string;
}

/** Builds (or finds) the binary: the last line scripts/centrifugo prints. Throws with its output if it fails. */
async function centrifugoBinary(): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)("bash", [join(repoRoot, "scripts/centrifugo")], {
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout.trim().split("\n").at(-1)!;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(
      `the Centrifugo baseline cannot run: scripts/centrifugo failed (${e.message.split("\n")[0]})\n${e.stderr ?? ""}`,
    );
  }
}

export async function startCentrifugo(logDir: string): Promise<Centrifugo> {
  const binary = await centrifugoBinary();
  const port = await freePort();
  const config = join(logDir, "centrifugo.json");
  await writeFile(
    config,
    JSON.stringify({
      address: "127.0.0.1",
      port,
      client_insecure: true,
      health: true,
      log_level: "error",
    }),
  );
  const c = withOpenFilesRaised(binary, ["--config", config]);
  const proc = new ManagedProcess({
    name: "centrifugo",
    ...c,
    cwd: logDir,
    logFile: join(logDir, "centrifugo.log"),
  });
  try {
    await waitUntil(
      "centrifugo",
      proc,
      async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok,
      60_000,
      200,
    );
  } catch (err) {
    await proc.stop(10_000);
    throw err;
  }
  return {
    proc,
    wsUrl: `ws://127.0.0.1:${port}/connection/websocket`,
    binary: binary.split("/").at(-1)!,
    async clients() {
      // Established TCP connections to its port (its own num_clients gauge is refreshed only now and then).
      const local = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
      const text = await readFile("/proc/net/tcp", "utf8");
      return text
        .split("\n")
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f[1]?.endsWith(local) && f[3] === "01").length;
    },
  };
}
