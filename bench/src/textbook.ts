// Starts the textbook baseline (textbook-server.ts): `nodes` processes on the run's Redis and FerretDB, run
// as the chat-nodes are (`node --import tsx`), and the ChatBackend that drives them with runChatBench: users
// and groups are names made here (no accounts), and the handshake carries the user's groups.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, ManagedProcess, repoRoot, tempDir, waitUntil } from "@vibetalk/testkit";
import type { ChatBackend, ChatNodes } from "./chat.js";

export async function startTextbook(o: {
  nodes: number;
  redisUrl: string;
  mongoUrl: string;
}): Promise<Pick<ChatNodes, "urls" | "stop">> {
  const dir = await tempDir("bench-textbook");
  const file = join(fileURLToPath(new URL(".", import.meta.url)), "textbook-server.ts");
  const procs: ManagedProcess[] = [];
  const stop = async () => {
    await Promise.all(procs.map((p) => p.stop(30_000)));
    await dir.remove();
  };
  try {
    const urls = await Promise.all(
      Array.from({ length: o.nodes }, async (_, i) => {
        const port = await freePort();
        const p = new ManagedProcess({
          name: `textbook-${i}`,
          command: process.execPath,
          args: ["--import", "tsx", file],
          cwd: repoRoot,
          logFile: join(dir.path, `textbook-${i}.log`),
          env: {
            ...process.env,
            PORT: String(port),
            REDIS_URL: o.redisUrl,
            MONGODB_URL: o.mongoUrl,
            TEXTBOOK_DB: "bench_textbook",
          },
        });
        procs.push(p);
        const url = `http://127.0.0.1:${port}`;
        await waitUntil(`textbook-${i}`, p, async () => (await fetch(`${url}/ready`)).ok, 90_000, 200);
        return url;
      }),
    );
    return { urls, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export const textbookBackend: ChatBackend = {
  register: (username) => Promise.resolve({ id: username, token: "" }),
  createGroup: () => Promise.resolve(`g${randomBytes(8).toString("hex")}`),
  auth: (u, groupIds) => ({ user: u.id, rooms: groupIds }),
};
