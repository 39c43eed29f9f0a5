import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, ManagedProcess, tempDir } from "@vibetalk/testkit";
import { nodeEnv, sleep, type Services } from "./harness.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** A chat-node in a child process, exactly as a pod runs it: `node --import tsx chat-node/src/main.ts`. */
export class ChildNode {
  private finalLog: string | null = null;
  private constructor(
    readonly proc: ManagedProcess,
    readonly url: string,
    readonly opsUrl: string,
    readonly env: Record<string, string>,
    private readonly dir: { path: string; remove(): Promise<void> },
  ) {}

  /** Everything the process wrote (stdout and stderr), also after stop() removed its folder. */
  log(): string {
    return this.finalLog ?? readFileSync(join(this.dir.path, "chat-node.log"), "utf8");
  }

  static async start(services: Services, overrides: Record<string, string> = {}): Promise<ChildNode> {
    const port = overrides["PORT"] ?? String(await freePort());
    const opsPort = overrides["OPS_PORT"] ?? String(await freePort());
    const env = nodeEnv(services, { LOG_LEVEL: "info", ...overrides, PORT: port, OPS_PORT: opsPort });
    const dir = await tempDir("chat-node");
    const proc = new ManagedProcess({
      name: `chat-node ${env["NODE_ID"]}`,
      command: process.execPath,
      args: ["--import", "tsx", "chat-node/src/main.ts"],
      cwd: repoRoot,
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/root", ...env },
      logFile: join(dir.path, "chat-node.log"),
    });
    const node = new ChildNode(proc, `http://127.0.0.1:${port}`, `http://127.0.0.1:${opsPort}`, env, dir);
    await node.waitReady(60_000);
    return node;
  }

  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.proc.exited)
        throw new Error(`chat-node exited (${this.proc.exitCode}):\n${this.proc.logTail()}`);
      try {
        const r = await fetch(`${this.opsUrl}/readyz`);
        if (r.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`chat-node not ready after ${timeoutMs} ms:\n${this.proc.logTail()}`);
  }

  kill(): Promise<boolean> {
    this.proc.signal("SIGKILL");
    return this.proc.waitExit(10_000);
  }

  /** Stops the process (SIGTERM, a drain) and removes its folder, keeping its log in memory. */
  async stop(): Promise<void> {
    await this.proc.stop(15_000);
    if (this.finalLog !== null) return;
    this.finalLog = readFileSync(join(this.dir.path, "chat-node.log"), "utf8");
    await this.dir.remove();
  }
}
