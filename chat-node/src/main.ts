// chat-node process entry point: configuration from the environment, graceful drain on SIGTERM.
import { ConfigError, loadConfig, type ChatNodeConfig } from "./config.js";
import { createLogger } from "./logger.js";
import { KubeConfig } from "@kubernetes/client-node";
import { BALANCE_KEY, decodeBalanceRound } from "@vibetalk/protocol/cluster";
import { KubernetesAssignmentSource } from "./kubernetes/assignment-source.js";
import { ConnectionsReporter } from "./kubernetes/connections-reporter.js";
import { createChatNode } from "./node.js";
import { startTracing } from "./tracing.js";

// `node dist/main.js parked list|replay|discard …`: the parked-queue admin command, in the image too.
if (process.argv[2] === "parked") {
  const { main } = await import("./admin/parked.js");
  process.exit(await main(process.argv.slice(3), process.env));
}

let config: ChatNodeConfig;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`chat-node: ${err.message}`);
    process.exit(1);
  }
  throw err;
}

const log = createLogger(config.logLevel, config.nodeId, config.pod);
const tracing = config.otelEndpoint ? await startTracing(config.otelEndpoint, config.otelServiceName) : null;
const k8sConfig = config.kubernetes;
// In a pod: the ServiceAccount's token (or the KUBECONFIG the local pod runner hands over).
const kubeConfig = k8sConfig ? new KubeConfig() : undefined;
kubeConfig?.loadFromDefault();
// The operator's connection balance rounds ride on the partitions ConfigMap this source reads anyway.
let balanceText: string | undefined;
const assignment =
  k8sConfig && kubeConfig
    ? new KubernetesAssignmentSource({
        kubeConfig,
        log,
        ...k8sConfig,
        onPartitionsData: (data) => {
          if (data[BALANCE_KEY] === balanceText) return;
          balanceText = data[BALANCE_KEY];
          node.balance(decodeBalanceRound(balanceText));
        },
      })
    : undefined;
const node = createChatNode(config, { logger: log, ...(assignment ? { assignment } : {}) });
const reporter =
  k8sConfig && kubeConfig
    ? new ConnectionsReporter(
        {
          kubeConfig,
          log,
          namespace: k8sConfig.namespace,
          podName: k8sConfig.podName,
          everyMs: k8sConfig.reportMs,
        },
        () => node.connections(),
      )
    : undefined;

process.on("unhandledRejection", (reason) =>
  log.error({ event: "node.unhandled_rejection", err: reason }, "unhandled rejection"),
);
process.on("uncaughtException", (err) => {
  log.fatal({ event: "node.uncaught_exception", err }, "uncaught exception; exiting");
  process.exit(1);
});

let signalled = false;
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.on(sig, () => {
    if (signalled) return;
    signalled = true;
    log.info({ event: "node.signal", signal: sig }, "shutting down");
    setTimeout(
      () => {
        log.error({ event: "node.drain_timeout" }, "drain exceeded the grace period; exiting");
        process.exit(1);
      },
      (config.drainSeconds + 5) * 1000,
    ).unref();
    reporter?.stop();
    void node
      .stop()
      .then(() => tracing?.shutdown())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, "drain failed");
          process.exit(1);
        },
      );
  });
}

try {
  await node.start();
  reporter?.start();
} catch (err) {
  log.fatal({ event: "node.start_failed", err }, "chat-node failed to start");
  process.exit(1);
}
