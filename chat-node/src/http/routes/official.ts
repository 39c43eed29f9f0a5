/**
 * The official group's HTTP routes for scripts and admins (docs/protocol.md, "The official group"):
 * `Authorization: Bearer <token>` is either OFFICIAL_SERVICE_TOKEN (the service) or a session token
 * of one of the group's admins. Only registered when OFFICIAL_GROUP is on.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { OFFICIAL_CHANNEL_ID, ProtocolError } from "@vibetalk/protocol";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { KeyedRateLimiter } from "../../domain/rate-limiter.js";
import { parseOrThrow } from "../../domain/validation.js";
import type { OfficialCaller } from "../../services/chat-service.js";
import type { HttpDeps } from "../api.js";

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Compares in constant time (digests first, so the lengths match). */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export function officialRoutes(d: HttpDeps, api: FastifyInstance): void {
  const official = d.config.official;
  if (!official) return;
  const s = d.schemas;
  // Posts over HTTP are limited like a socket's sends, per caller (the service is one caller).
  const posts = new KeyedRateLimiter(d.config.limits.sendRatePerSecond, d.config.limits.sendBurst);

  const callerOf = async (req: FastifyRequest): Promise<OfficialCaller> => {
    const h = req.headers.authorization;
    const m = typeof h === "string" ? /^Bearer\s+(\S+)$/i.exec(h) : null;
    const token = m?.[1];
    if (!token) throw new ProtocolError("UNAUTHENTICATED", "Authorization: Bearer <token> is required");
    if (official.serviceToken !== undefined && sameSecret(token, official.serviceToken)) {
      return { kind: "service" };
    }
    const session = await d.tokens.verify(token);
    return { kind: "user", userId: session.userId };
  };

  api.post("/official/messages", async (req, reply) => {
    const caller = await callerOf(req);
    const body = parseOrThrow(s.OfficialPostBody, req.body);
    if (!posts.tryTake(caller.kind === "service" ? "service" : caller.userId, Date.now())) {
      throw new ProtocolError(
        "RATE_LIMITED",
        `at most ${d.config.limits.sendRatePerSecond} messages per second`,
      );
    }
    await d.service.postAsService(caller, body);
    return reply.code(202).send({ ok: true, clientMsgId: body.clientMsgId });
  });

  api.patch("/official/members/:userId", async (req) => {
    const caller = await callerOf(req);
    const { userId } = parseOrThrow(s.OfficialMemberParams, req.params);
    const { role } = parseOrThrow(s.UpdateMemberBody, req.body);
    if (caller.kind === "service") await d.service.setOfficialRoleAsService(userId, role);
    else await d.service.setRole(caller.userId, OFFICIAL_CHANNEL_ID, userId, role);
    return { ok: true };
  });
}
