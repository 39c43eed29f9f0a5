/**
 * The operator process: config from env (validated), structured logs, informers + leader election +
 * reconciler, /healthz /readyz /metrics over HTTP, external.metrics.k8s.io over HTTPS, and a graceful
 * shutdown that releases the leader Lease.
 */
import { readFile } from "node:fs/promises";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import type { FastifyInstance } from "fastify";
import { pino, type Logger } from "pino";
import { ConfigError, loadConfig, type OperatorConfig } from "./config.js";
import { createPodAnnotationConnectionSource } from "./controller/connections.js";
import { errorMessage } from "./controller/errors.js";
import { createKubeEventRecorder } from "./controller/events.js";
import { createOperator } from "./controller/operator.js";
import { createAmqpTopologyCleaner, createKubeSecretReader } from "./controller/topology.js";
import { createExternalMetricsServer, createHealthServer } from "./http/servers.js";
import { createMetrics } from "./metrics.js";

/** The aggregator's client CA, per EXTERNAL_METRICS_CLIENT_CA; undefined = no client auth. */
async function resolveClientCa(kc: KubeConfig, setting: string, log: Logger): Promise<string | undefined> {
  if (setting === "none") return undefined;
  if (setting !== "auto") return readFile(setting, "utf8");
  const core = kc.makeApiClient(CoreV1Api);
  const cm = await core.readNamespacedConfigMap({
    namespace: "kube-system",
    name: "extension-apiserver-authentication",
  });
  const ca = cm.data?.["requestheader-client-ca-file"];
  if (!ca)
    throw new Error("kube-system/extension-apiserver-authentication has no requestheader-client-ca-file");
  log.info("external metrics API: client certificates must be signed by the API server's requestheader CA");
  return ca;
}

async function listen(app: FastifyInstance, port: number, host: string): Promise<number> {
  await app.listen({ port, host });
  const addr = app.server.address();
  return typeof addr === "object" && addr ? addr.port : port;
}

async function run(config: OperatorConfig, log: Logger): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const metrics = createMetrics();
  let shuttingDown = false;
  const operator = createOperator({
    kc,
    config,
    log,
    metrics,
    events: createKubeEventRecorder({ kc, instance: config.identity, log }),
    connections: createPodAnnotationConnectionSource(),
    topology: createAmqpTopologyCleaner(createKubeSecretReader(kc)),
    onLostLeadership: () => {
      if (shuttingDown) return;
      log.error("lost the leader Lease; exiting so that a restart campaigns again");
      process.exit(1);
    },
  });
  const health = createHealthServer(
    {
      unhealthyInformers: () => operator.unhealthyInformers(),
      role: () => (operator.isLeader() ? "leader" : "standby"),
    },
    metrics.registry,
  );
  const metricsPort = await listen(health, config.metricsPort, config.metricsHost);
  let external: FastifyInstance | undefined;
  let externalMetricsPort: number | undefined;
  if (config.externalMetricsEnabled) {
    const clientCa = await resolveClientCa(kc, config.externalMetricsClientCa, log);
    external = await createExternalMetricsServer({
      connections: (ns) => operator.connectionsFor(ns),
      ...(clientCa ? { clientCa } : {}),
    });
    externalMetricsPort = await listen(external, config.externalMetricsPort, config.metricsHost);
  }
  log.info(
    {
      metricsPort,
      externalMetricsPort,
      identity: config.identity,
      watchNamespace: config.watchNamespace ?? "*",
    },
    "listening",
  );
  await operator.start();
  log.info("informers started");

  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ signal }, "shutting down");
    const timer = setTimeout(() => process.exit(1), 10_000);
    timer.unref();
    await operator.stop().catch((err: unknown) => log.warn({ err: errorMessage(err) }, "stop failed"));
    await Promise.allSettled([health.close(), external?.close()]);
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

let config: OperatorConfig;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}
const log = pino({ level: config.logLevel, base: { component: "vibetalk-operator" } });
run(config, log).catch((err: unknown) => {
  log.fatal({ err: errorMessage(err) }, "operator failed to start");
  process.exit(1);
});
