/** File upload (multipart, one file, bounded) and download (sandboxed, never sniffed). */
import { ProtocolError } from "@vibetalk/protocol";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { parseOrThrow } from "../../domain/validation.js";
import { fileView } from "../../services/views.js";
import type { HttpDeps } from "../api.js";

/** Served inline; anything else is an attachment. */
const INLINE_TYPES = /^(image\/(png|jpeg|gif|webp)|application\/pdf|audio\/|video\/)/;

export function fileRoutes(d: HttpDeps, authed: FastifyInstance): void {
  const s = d.schemas;
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
