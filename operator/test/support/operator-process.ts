/** Runs the operator entry point as a child process against a test control plane. */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../../src/main.ts", import.meta.url));

export interface OperatorProcess {
  child: ChildProcess;
  identity: string;
  metricsPort: number;
  externalMetricsPort: number | undefined;
  logs(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL (no lease release) and wait for exit. */
  kill(): Promise<void>;
}

export async function startOperator(o: {
  kubeconfigPath: string;
  identity: string;
  env?: Record<string, string>;
}): Promise<OperatorProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN], {
    env: {
      ...process.env,
      KUBECONFIG: o.kubeconfigPath,
      POD_NAME: o.identity,
      POD_NAMESPACE: "vibetalk-system",
      METRICS_HOST: "127.0.0.1",
      METRICS_PORT: "0",
      EXTERNAL_METRICS_PORT: "0",
      LOG_LEVEL: "debug",
      ...o.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr?.on("data", (b: Buffer) => (out += b.toString()));
  const exited = once(child, "exit");
  const ports = await new Promise<{ metricsPort: number; externalMetricsPort?: number }>(
    (resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`operator did not start in 30 s:\n${out}`)), 30_000);
      const check = () => {
        for (const line of out.split("\n")) {
          if (!line.includes('"msg":"listening"')) continue;
          clearTimeout(timer);
          resolve(JSON.parse(line) as { metricsPort: number; externalMetricsPort?: number });
          return;
        }
      };
      child.stdout?.on("data", check);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`operator exited ${code}:\n${out}`));
      });
    },
  );
  const wait = async () => {
    if (child.exitCode === null && child.signalCode === null) await exited;
  };
  return {
    child,
    identity: o.identity,
    metricsPort: ports.metricsPort,
    externalMetricsPort: ports.externalMetricsPort,
    logs: () => out,
    async stop() {
      child.kill("SIGTERM");
      await wait();
    },
    async kill() {
      child.kill("SIGKILL");
      await wait();
    },
  };
}
