/** Users, channels, members and message history (every route needs a token). */
import type { FastifyInstance } from "fastify";
import { parseOrThrow } from "../../domain/validation.js";
import { channelView } from "../../services/views.js";
import type { HttpDeps } from "../api.js";

export function channelRoutes(d: HttpDeps, authed: FastifyInstance): void {
  const s = d.schemas;
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
    const body = parseOrThrow(s.RenameChannelBody, req.body);
    return { channel: channelView(await d.service.updateChannel(req.userId, id, body)) };
  });
  authed.put("/channels/:id/pin", async (req) => {
    const { id } = parseOrThrow(s.ChannelIdParams, req.params);
    const { seq } = parseOrThrow(s.PinBody, req.body);
    return { channel: channelView(await d.service.pin(req.userId, id, seq)) };
  });
  authed.delete("/channels/:id/pin", async (req) => {
    const { id } = parseOrThrow(s.ChannelIdParams, req.params);
    return { channel: channelView(await d.service.pin(req.userId, id, null)) };
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
  // PUT sets, DELETE lifts: a mute of one's channel, a block of another user.
  for (const [method, on] of [
    ["put", true],
    ["delete", false],
  ] as const) {
    authed[method]("/channels/:id/mute", async (req) => {
      const { id } = parseOrThrow(s.ChannelIdParams, req.params);
      await d.service.setMuted(req.userId, id, on);
      return { ok: true };
    });
    authed[method]("/blocks/:userId", async (req) => {
      const { userId } = parseOrThrow(s.UserIdParams, req.params);
      await d.service.setBlocked(req.userId, userId, on);
      return { ok: true };
    });
  }
  authed.get("/blocks", async (req) => d.service.blocks(req.userId));
  authed.get("/channels/:id/messages", async (req) => {
    const { id } = parseOrThrow(s.ChannelIdParams, req.params);
    const q = parseOrThrow(s.MessagesQuery, req.query);
    return d.service.messages(req.userId, id, q);
  });
}
