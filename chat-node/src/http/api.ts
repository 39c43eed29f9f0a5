import { existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import fastifyMultipart from "@fastify/multipart";
import fastifyStatic from "@fastify/static";
import {
  API_PREFIX,
  HTTP_STATUS,
  ProtocolError,
  type ErrorInfo,
  type ProtocolSchemas,
} from "@vibetalk/protocol";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { ChatNodeConfig } from "../config.js";
import { toErrorInfo } from "../transport/errors.js";
import { newTraceId, traceIdOf, type Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { Store } from "../ports.js";
import type { Session, TokenService } from "../services/auth.js";
import type { ChatService } from "../services/chat-service.js";
import { bearerAuth, frameworkError, JSON_MAX_DEPTH, withinDepth } from "./request-guards.js";
import { authRoutes } from "./routes/auth.js";
import { channelRoutes } from "./routes/channels.js";
import { fileRoutes } from "./routes/files.js";
import { officialRoutes } from "./routes/official.js";
import { pushRoutes } from "./routes/push.js";

declare module "fastify" {
  interface FastifyRequest {
    userId: string;
    session: Session;
  }
}

export interface HttpDeps {
  config: ChatNodeConfig;
  schemas: ProtocolSchemas;
  service: ChatService;
  store: Store;
  tokens: TokenService;
  metrics: Metrics;
  log: Logger;
}

/** A JSON body is at most 64 KiB (docs/protocol.md, "Limits"). */
const JSON_BODY_LIMIT = 64 * 1024;

/**
 * The HTTP API (`/api/v1`) and the static web client: request logging, the error mapping and the request
 * guards here, the routes in ./routes/ (auth, channels, files).
 */
export async function createHttpApp(d: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: JSON_BODY_LIMIT,
    // X-Forwarded-For only from configured proxies (TRUST_PROXY); otherwise the TCP peer's address.
    trustProxy: d.config.trustProxy.length > 0 ? d.config.trustProxy : false,
    loggerInstance: d.log.child({ component: "http" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // Every request line carries reqId (random) and traceId (the caller's W3C traceparent, else new).
    genReqId: () => randomBytes(8).toString("hex"),
    childLoggerFactory: (logger, bindings, opts, rawReq) =>
      logger.child({ ...bindings, traceId: traceIdOf(rawReq.headers["traceparent"]) ?? newTraceId() }, opts),
  });
  // One debug line per request, without its query string (a token never travels there, but a
  // search term should not reach the logs either).
  app.addHook("onResponse", async (req, reply) => {
    req.log.debug(
      {
        event: "http.request",
        method: req.method,
        route: req.routeOptions.url ?? req.url.split("?")[0],
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      "request",
    );
  });
  app.decorateRequest("userId", "");
  app.decorateRequest("session", null as unknown as Session);

  app.setErrorHandler((err: unknown, req, reply) => {
    let info: ErrorInfo;
    if (err instanceof ProtocolError) info = err.toInfo();
    else {
      const fw = frameworkError(err as { code?: unknown; statusCode?: unknown; message?: string });
      if (fw) info = fw;
      else {
        const mapped = toErrorInfo(err);
        info = mapped.info;
        if (mapped.internal) req.log.error({ err, url: req.url }, "request failed");
      }
    }
    d.metrics.errors.inc({ code: info.code });
    void reply.code(HTTP_STATUS[info.code]).send({ error: info });
  });
  app.setNotFoundHandler((req, reply) => {
    d.metrics.errors.inc({ code: "NOT_FOUND" });
    void reply
      .code(404)
      .send({ error: { code: "NOT_FOUND", message: `no route ${req.method} ${req.url.split("?")[0]}` } });
  });

  // Depth before anything reads a body: nesting past JSON_MAX_DEPTH is refused even in fields the
  // schemas would strip (a parser or a later walk must never meet 30,000 levels).
  app.addHook("preValidation", async (req) => {
    if (req.body !== undefined && req.body !== null && typeof req.body === "object" && !req.isMultipart()) {
      if (!withinDepth(req.body, JSON_MAX_DEPTH)) {
        throw new ProtocolError("INVALID_ARGUMENT", `JSON nested deeper than ${JSON_MAX_DEPTH} levels`);
      }
    }
  });

  await app.register(fastifyMultipart, {
    limits: { fileSize: d.config.limits.maxFileBytes, files: 1, fields: 10, parts: 12 },
  });

  const auth = authRoutes(d);
  await app.register(
    async (api) => {
      auth.open(api);
      officialRoutes(d, api);
      await api.register(async (authed) => {
        authed.addHook("preHandler", bearerAuth(d.tokens));
        auth.authed(authed);
        channelRoutes(d, authed);
        fileRoutes(d, authed);
        pushRoutes(d, authed);
      });
    },
    { prefix: API_PREFIX },
  );

  // ---- web client ----
  if (existsSync(d.config.publicDir)) {
    await app.register(fastifyStatic, { root: d.config.publicDir, prefix: "/", index: ["index.html"] });
  }
  return app;
}
