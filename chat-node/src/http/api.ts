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
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import type { ChatNodeConfig } from "../config.js";
import { KeyedRateLimiter } from "../domain/rate-limiter.js";
import { parseOrThrow } from "../domain/validation.js";
import { toErrorInfo } from "../transport/errors.js";
import { newTraceId, traceIdOf, type Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { Store } from "../ports.js";
import type { Session, TokenService } from "../services/auth.js";
import type { ChatService } from "../services/chat-service.js";
import { channelView, fileView } from "../services/views.js";

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

const JSON_BODY_LIMIT = 64 * 1024;
const JSON_MAX_DEPTH = 32;

/** Whether a parsed JSON value nests at most `max` arrays/objects deep (iterative: no stack to blow). */
export function withinDepth(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== "object") continue;
    if (depth > max) return false;
    for (const child of Object.values(v as Record<string, unknown>)) stack.push([child, depth + 1]);
  }
  return true;
}
/** Register/login per client address: 10/s, burst 50. */
const AUTH_RATE = 10;
const AUTH_BURST = 50;
/** Failed logins per account: 10, then one per 6 s (OWASP: throttle per account, not only per address). */
const LOGIN_FAILURE_RATE = 1 / 6;
const LOGIN_FAILURE_BURST = 10;
const INLINE_TYPES = /^(image\/(png|jpeg|gif|webp)|application\/pdf|audio\/|video\/)/;

/** Maps framework errors (body parser, multipart) to protocol errors. */
function frameworkError(err: { code?: unknown; statusCode?: unknown; message?: string }): ErrorInfo | null {
  const code = typeof err.code === "string" ? err.code : "";
  if (
    code === "FST_ERR_CTP_BODY_TOO_LARGE" ||
    code === "FST_REQ_FILE_TOO_LARGE" ||
    code === "FST_FILES_LIMIT"
  ) {
    return { code: "PAYLOAD_TOO_LARGE", message: "the request body is too large" };
  }
  // busboy's words for a multipart body that does not parse (no boundary, cut short, bad headers)
  if (
    /^(Multipart: |Unexpected end of (form|file|multipart data)|Malformed part header|Part terminated early|\w+ terminated early due to unexpected end)/.test(
      err.message ?? "",
    )
  ) {
    return { code: "INVALID_ARGUMENT", message: `malformed multipart/form-data body: ${err.message}` };
  }
  const status = typeof err.statusCode === "number" ? err.statusCode : 0;
  if (status === 413) return { code: "PAYLOAD_TOO_LARGE", message: "the request body is too large" };
  if (status >= 400 && status < 500)
    return { code: "INVALID_ARGUMENT", message: err.message ?? "bad request" };
  return null;
}

/** The HTTP API (`/api/v1`), health, metrics and the static web client. */
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
  const s = d.schemas;
  const authLimiter = new KeyedRateLimiter(AUTH_RATE, AUTH_BURST);
  const loginFailures = new KeyedRateLimiter(LOGIN_FAILURE_RATE, LOGIN_FAILURE_BURST);
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

  const authenticate = async (req: FastifyRequest) => {
    const h = req.headers.authorization;
    const m = typeof h === "string" ? /^Bearer\s+(\S+)$/i.exec(h) : null;
    if (!m) throw new ProtocolError("UNAUTHENTICATED", "Authorization: Bearer <token> is required");
    req.session = await d.tokens.verify(m[1]);
    req.userId = req.session.userId;
  };
  const limitAuth = async (req: FastifyRequest) => {
    if (!authLimiter.tryTake(req.ip, Date.now())) {
      if (req.url.endsWith("/login")) d.metrics.loginFailures.inc({ reason: "throttled_address" });
      throw new ProtocolError("RATE_LIMITED", "too many attempts; slow down");
    }
  };

  // ---- API ----
  await app.register(
    async (api) => {
      api.post("/auth/register", { preHandler: limitAuth }, async (req, reply) => {
        const body = parseOrThrow(s.RegisterBody, req.body);
        return reply.code(201).send(await d.service.register(body));
      });
      api.post("/auth/login", { preHandler: limitAuth }, async (req) => {
        const body = parseOrThrow(s.LoginBody, req.body);
        const account = body.username.toLowerCase();
        if (!loginFailures.available(account, Date.now())) {
          d.metrics.loginFailures.inc({ reason: "throttled_account" });
          throw new ProtocolError("RATE_LIMITED", "too many failed logins for this account; wait a minute");
        }
        try {
          return await d.service.login(body);
        } catch (err) {
          if (err instanceof ProtocolError && err.code === "UNAUTHENTICATED") {
            loginFailures.tryTake(account, Date.now());
            d.metrics.loginFailures.inc({ reason: "password" });
          }
          throw err;
        }
      });

      await api.register(async (authed) => {
        authed.addHook("preHandler", authenticate);
        authed.get("/me", async (req) => ({ user: await d.service.me(req.userId) }));
        authed.post("/auth/logout", async (req) => {
          await d.service.logout(req.session);
          return { ok: true };
        });
        authed.post("/auth/password", { preHandler: limitAuth }, async (req) =>
          d.service.changePassword(req.session, parseOrThrow(s.ChangePasswordBody, req.body)),
        );
        authed.get("/users", async (req) => d.service.searchUsers(parseOrThrow(s.UsersQuery, req.query)));

        authed.post("/channels", async (req, reply) => {
          const body = parseOrThrow(s.CreateChannelBody, req.body);
          const r = await d.service.createChannel(req.userId, body);
          return reply.code(r.created ? 201 : 200).send({ channel: channelView(r.channel) });
        });
        authed.get("/channels", async (req) => {
          const q = parseOrThrow(s.ChannelsQuery, req.query);
          return d.service.listChannels(req.userId, q.cursor, q.limit);
        });
        authed.get("/channels/:id", async (req) => {
          const { id } = parseOrThrow(s.ChannelIdParams, req.params);
          return d.service.channelDetails(req.userId, id);
        });
        authed.patch("/channels/:id", async (req) => {
          const { id } = parseOrThrow(s.ChannelIdParams, req.params);
          const { name } = parseOrThrow(s.RenameChannelBody, req.body);
          return { channel: channelView(await d.service.rename(req.userId, id, name)) };
        });
        authed.post("/channels/:id/members", async (req) => {
          const { id } = parseOrThrow(s.ChannelIdParams, req.params);
          const { userIds } = parseOrThrow(s.AddMembersBody, req.body);
          return d.service.addMembers(req.userId, id, userIds);
        });
        authed.patch("/channels/:id/members/:userId", async (req) => {
          const p = parseOrThrow(s.MemberParams, req.params);
          const { role } = parseOrThrow(s.UpdateMemberBody, req.body);
          return d.service.setRole(req.userId, p.id, p.userId, role);
        });
        authed.delete("/channels/:id/members/:userId", async (req) => {
          const p = parseOrThrow(s.MemberParams, req.params);
          await d.service.removeMember(req.userId, p.id, p.userId);
          return { ok: true };
        });
        authed.get("/channels/:id/messages", async (req) => {
          const { id } = parseOrThrow(s.ChannelIdParams, req.params);
          const q = parseOrThrow(s.MessagesQuery, req.query);
          return { messages: await d.service.messages(req.userId, id, q) };
        });

        authed.post("/files", async (req, reply) => upload(d, req, reply));
        authed.get("/files/:id/meta", async (req) => {
          const { id } = parseOrThrow(s.FileIdParams, req.params);
          return { file: await d.service.fileFor(req.userId, id) };
        });
        authed.get("/files/:id", async (req, reply) => {
          const { id } = parseOrThrow(s.FileIdParams, req.params);
          const f = await d.service.fileFor(req.userId, id);
          const disposition = INLINE_TYPES.test(f.contentType) ? "inline" : "attachment";
          return reply
            .header("content-type", f.contentType)
            .header("content-length", String(f.size))
            .header("content-disposition", `${disposition}; filename*=UTF-8''${encodeURIComponent(f.name)}`)
            .header("x-content-type-options", "nosniff")
            .header("content-security-policy", "sandbox; default-src 'none'")
            .header("cache-control", "private, max-age=86400")
            .send(d.store.openFile(f.id));
        });
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

async function upload(d: HttpDeps, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  if (!req.isMultipart())
    throw new ProtocolError("INVALID_ARGUMENT", "expected multipart/form-data with one file");
  const part = await req.file();
  if (!part) throw new ProtocolError("INVALID_ARGUMENT", "no file in the request");
  const fromField = part.fields["channelId"];
  const fieldValue =
    fromField && !Array.isArray(fromField) && "value" in fromField ? fromField.value : undefined;
  const query = req.query as Record<string, unknown>;
  const { channelId } = parseOrThrow(d.schemas.UploadQuery, { channelId: query["channelId"] ?? fieldValue });
  try {
    parseOrThrow(d.schemas.UploadFile, { filename: part.filename });
  } catch (err) {
    part.file.resume();
    throw err;
  }
  const rec = await d.service.upload(req.userId, channelId, part.filename, part.mimetype, part.file);
  if (part.file.truncated) {
    await d.store.deleteFile(rec.id);
    throw new ProtocolError("PAYLOAD_TOO_LARGE", `a file is at most ${d.config.limits.maxFileBytes} bytes`);
  }
  return reply.code(201).send({ file: fileView(rec) });
}
