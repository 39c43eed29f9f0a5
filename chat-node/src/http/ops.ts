import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";

export interface Readiness {
  ready: boolean;
  checks: { broker: boolean; redis: boolean; store: boolean; draining: boolean; publishing: boolean };
}

export interface OpsDeps {
  metrics: Metrics;
  log: Logger;
  readiness(): Promise<Readiness>;
  connections(): number;
}

/**
 * The operations server (OPS_PORT, 9090): probes, Prometheus and the connection count, on a port of
 * its own that the client Service never exposes (docs/security.md). Nothing here is authenticated, so
 * it must only be reachable from inside the cluster: the NetworkPolicy admits the kubelet and the
 * metrics namespace only.
 */
export function createOpsApp(d: OpsDeps): FastifyInstance {
  const app = Fastify({
    bodyLimit: 1024,
    loggerInstance: d.log.child({ component: "ops" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => {
    const r = await d.readiness();
    return reply.code(r.ready ? 200 : 503).send(r);
  });
  app.get("/metrics", async (_req, reply) =>
    reply.header("content-type", d.metrics.registry.contentType).send(await d.metrics.registry.metrics()),
  );
  app.get("/internal/connections", async () => ({ connections: d.connections() }));
  app.setNotFoundHandler((req, reply) => {
    void reply
      .code(404)
      .send({ error: { code: "NOT_FOUND", message: `no route ${req.method} ${req.url.split("?")[0]}` } });
  });
  return app;
}
