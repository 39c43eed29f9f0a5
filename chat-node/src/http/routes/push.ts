/** Push devices and the VAPID key (docs/protocol.md, "Push notifications"). */
import { ProtocolError } from "@vibetalk/protocol";
import type { FastifyInstance } from "fastify";
import { parseOrThrow } from "../../domain/validation.js";
import { pushDeviceView, pushTargetOf, registerPushDevice } from "../../services/push-devices.js";
import type { HttpDeps } from "../api.js";

export function pushRoutes(d: HttpDeps, authed: FastifyInstance): void {
  const s = d.schemas;
  const config = d.config.push;
  authed.get("/push/vapid", async () => ({ publicKey: config.vapid?.publicKey ?? null }));
  authed.post("/push/devices", async (req, reply) => {
    const target = pushTargetOf(parseOrThrow(s.PushDeviceBody, req.body), config);
    const r = await registerPushDevice(d.store, config, req.userId, target);
    return reply.code(r.created ? 201 : 200).send({ device: pushDeviceView(r.device) });
  });
  authed.get("/push/devices", async (req) => ({
    devices: (await d.store.pushDevicesOf([req.userId])).map(pushDeviceView),
  }));
  authed.delete("/push/devices/:id", async (req) => {
    const { id } = parseOrThrow(s.PushDeviceIdParams, req.params);
    if (!(await d.store.removePushDevice(req.userId, id))) {
      throw new ProtocolError("NOT_FOUND", "no such push device");
    }
    return { ok: true };
  });
}
