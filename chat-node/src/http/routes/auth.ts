/** Accounts and sessions: register, login (throttled per address and per account), logout, password, me. */
import { ProtocolError } from "@vibetalk/protocol";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { KeyedRateLimiter } from "../../domain/rate-limiter.js";
import { parseOrThrow } from "../../domain/validation.js";
import type { HttpDeps } from "../api.js";

/** Register/login per client address: 10/s, burst 50. */
const AUTH_RATE = 10;
const AUTH_BURST = 50;
/** Failed logins per account: 10, then one per 6 s (OWASP: throttle per account, not only per address). */
const LOGIN_FAILURE_RATE = 1 / 6;
const LOGIN_FAILURE_BURST = 10;

/** The routes of the auth API: `open` needs no token, `authed` does. */
export function authRoutes(d: HttpDeps): {
  open(api: FastifyInstance): void;
  authed(api: FastifyInstance): void;
} {
  const s = d.schemas;
  const authLimiter = new KeyedRateLimiter(AUTH_RATE, AUTH_BURST);
  const loginFailures = new KeyedRateLimiter(LOGIN_FAILURE_RATE, LOGIN_FAILURE_BURST);
  const limitAuth = async (req: FastifyRequest) => {
    if (!authLimiter.tryTake(req.ip, Date.now())) {
      if (req.url.endsWith("/login")) d.metrics.loginFailures.inc({ reason: "throttled_address" });
      throw new ProtocolError("RATE_LIMITED", "too many attempts; slow down");
    }
  };
  return {
    open(api) {
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
    },
    authed(authed) {
      authed.get("/me", async (req) => ({ user: await d.service.me(req.userId) }));
      authed.post("/auth/logout", async (req) => {
        await d.service.logout(req.session);
        return { ok: true };
      });
      authed.post("/auth/password", { preHandler: limitAuth }, async (req) =>
        d.service.changePassword(req.session, parseOrThrow(s.ChangePasswordBody, req.body)),
      );
    },
  };
}
