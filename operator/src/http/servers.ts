/**
 * The operator's two listeners:
 * - plain HTTP (METRICS_PORT): /healthz, /readyz, /metrics — probes and Prometheus;
 * - HTTPS (EXTERNAL_METRICS_PORT): external.metrics.k8s.io/v1beta1 for the API aggregator, with a
 *   self-signed serving certificate (the APIService trusts it with insecureSkipTLSVerify or a
 *   caBundle) and, when a client CA is given, TLS client authentication of the aggregator's
 *   front-proxy certificate.
 */
import Fastify, { type FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { generate } from "selfsigned";
import { CONNECTIONS_METRIC } from "../resources/hpa.js";
import {
  apiGroup,
  apiResourceList,
  EXTERNAL_METRICS_GROUP,
  EXTERNAL_METRICS_VERSION,
  externalMetricValueList,
  type ClusterConnections,
} from "./external-metrics.js";

export interface HealthSources {
  /** Names of informers that are not listed-and-watching. */
  unhealthyInformers(): string[];
  role(): "leader" | "standby";
}

export function createHealthServer(health: HealthSources, registry: Registry): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => {
    const bad = health.unhealthyInformers();
    if (bad.length > 0)
      return reply.code(503).send({ status: "informers not ready", informers: bad, role: health.role() });
    return { status: "ok", role: health.role() };
  });
  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", registry.contentType);
    return registry.metrics();
  });
  return app;
}

export interface ExternalMetricsOptions {
  /** Connections per ChatCluster of a namespace. */
  connections(namespace: string): Promise<ClusterConnections[]>;
  /** PEM of the CA that signs the aggregator's client certificate; none = no client auth. */
  clientCa?: string;
  /** Serving certificate; generated (self-signed) when absent. */
  tls?: { key: string; cert: string };
}

async function selfSignedTls(): Promise<{ key: string; cert: string }> {
  const pems = await generate([{ name: "commonName", value: "vibetalk-operator" }], {
    keySize: 2048,
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          { type: 2, value: "localhost" },
          { type: 2, value: "vibetalk-operator.vibetalk-system.svc" },
          { type: 7, ip: "127.0.0.1" },
        ],
      },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}

export async function createExternalMetricsServer(o: ExternalMetricsOptions): Promise<FastifyInstance> {
  const tls = o.tls ?? (await selfSignedTls());
  const app = Fastify({
    logger: false,
    https: {
      key: tls.key,
      cert: tls.cert,
      ...(o.clientCa ? { ca: o.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
    },
  });
  const base = `/apis/${EXTERNAL_METRICS_GROUP}/${EXTERNAL_METRICS_VERSION}`;
  app.get(`/apis/${EXTERNAL_METRICS_GROUP}`, async () => apiGroup());
  app.get(base, async () => apiResourceList());
  app.get<{ Params: { namespace: string; metric: string }; Querystring: { labelSelector?: string } }>(
    `${base}/namespaces/:namespace/:metric`,
    async (req, reply) => {
      const { namespace, metric } = req.params;
      if (metric.toLowerCase() !== CONNECTIONS_METRIC) {
        return reply.code(404).send(status(404, "NotFound", `external metric ${metric} is not served here`));
      }
      try {
        return externalMetricValueList(
          await o.connections(namespace),
          req.query.labelSelector ?? "",
          new Date(),
        );
      } catch (err) {
        return reply
          .code(400)
          .send(status(400, "BadRequest", err instanceof Error ? err.message : String(err)));
      }
    },
  );
  app.get("/healthz", async () => ({ status: "ok" }));
  return app;
}

function status(code: number, reason: string, message: string) {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
}
