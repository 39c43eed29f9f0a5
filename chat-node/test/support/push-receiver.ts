/**
 * A push gateway and a Web Push service of the test's own, on 127.0.0.1 (docs/chat-node.md, "Push
 * notifications"). The Web Push side does what a browser's push service and the browser do: it
 * checks the VAPID signature, then decrypts the aes128gcm body (RFC 8188, keys per RFC 8291) with
 * the subscription's private key, written here with node:crypto alone so that it checks web-push
 * rather than repeats it.
 */
import {
  createECDH,
  createDecipheriv,
  createPublicKey,
  hkdfSync,
  randomBytes,
  verify,
  type ECDH,
} from "node:crypto";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";

export interface PushRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

/** How the receiver answers a request: a status and a JSON body. */
export type Answer = { status: number; body?: unknown };

export class PushReceiver {
  readonly requests: PushRequest[] = [];
  /** Answers queued per path (first come, first used); an empty queue answers `fallback(path)`. */
  private readonly queued = new Map<string, Answer[]>();

  private constructor(
    private readonly server: Server,
    readonly base: string,
    private readonly fallback: (path: string, body: Buffer) => Answer,
  ) {}

  static async start(fallback: (path: string, body: Buffer) => Answer): Promise<PushReceiver> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const self = new PushReceiver(
      server,
      `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      fallback,
    );
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const r = self.record(req.url ?? "/", req.headers, Buffer.concat(chunks));
        res.writeHead(r.status, { "content-type": "application/json" }).end(JSON.stringify(r.body ?? {}));
      });
    });
    return self;
  }

  private record(path: string, headers: IncomingHttpHeaders, body: Buffer): Answer {
    this.requests.push({ path, headers, body, at: Date.now() });
    return this.queued.get(path)?.shift() ?? this.fallback(path, body);
  }

  /** The next answers to `path`, in order. */
  answer(path: string, ...answers: Answer[]): void {
    this.queued.set(path, [...(this.queued.get(path) ?? []), ...answers]);
  }

  to(path: string): PushRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A browser's side of a Web Push subscription: its P-256 key pair and auth secret. */
export class Subscriber {
  private readonly ecdh: ECDH = createECDH("prime256v1");
  private readonly auth = randomBytes(16);

  constructor(readonly endpoint: string) {
    this.ecdh.generateKeys();
  }

  /** The subscription as PushSubscription.toJSON() gives it. */
  get subscription(): { endpoint: string; keys: { p256dh: string; auth: string } } {
    return {
      endpoint: this.endpoint,
      keys: { p256dh: this.ecdh.getPublicKey().toString("base64url"), auth: this.auth.toString("base64url") },
    };
  }

  /** The plaintext of an aes128gcm body (one record, as web-push sends), or an error. */
  decrypt(body: Buffer): string {
    const salt = body.subarray(0, 16);
    const idLen = body.readUInt8(20);
    const senderKey = body.subarray(21, 21 + idLen);
    const ciphertext = body.subarray(21 + idLen);
    const secret = this.ecdh.computeSecret(senderKey);
    const info = Buffer.concat([Buffer.from("WebPush: info\0"), this.ecdh.getPublicKey(), senderKey]);
    const ikm = Buffer.from(hkdfSync("sha256", secret, this.auth, info, 32));
    const cek = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
    const nonce = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
    const decipher = createDecipheriv("aes-128-gcm", cek, nonce);
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
    const padded = Buffer.concat([
      decipher.update(ciphertext.subarray(0, ciphertext.length - 16)),
      decipher.final(),
    ]);
    // The last record ends with the delimiter 0x02, then zero padding.
    let end = padded.length - 1;
    while (end >= 0 && padded[end] === 0) end--;
    if (padded[end] !== 2) throw new Error("no last-record delimiter in the Web Push plaintext");
    return padded.subarray(0, end).toString("utf8");
  }
}

/**
 * Checks a Web Push request's `Authorization: vapid t=<JWT>, k=<key>` (RFC 8292): `k` is the
 * expected public key, the ES256 signature holds, `aud` is the endpoint's origin and `exp` is in the
 * future. Returns the JWT's claims.
 */
export function verifyVapid(
  headers: IncomingHttpHeaders,
  publicKey: string,
  endpoint: string,
): { aud: string; exp: number; sub: string } {
  const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(String(headers["authorization"] ?? ""));
  if (!m) throw new Error(`no VAPID authorization: ${String(headers["authorization"])}`);
  const [jwt, k] = [m[1] as string, m[2] as string];
  if (k !== publicKey) throw new Error("VAPID k is not the node's public key");
  const [h, p, sig] = jwt.split(".") as [string, string, string];
  const raw = Buffer.from(k, "base64url");
  const key = createPublicKey({
    key: {
      kty: "EC",
      crv: "P-256",
      x: raw.subarray(1, 33).toString("base64url"),
      y: raw.subarray(33, 65).toString("base64url"),
    },
    format: "jwk",
  });
  const ok = verify(
    "sha256",
    Buffer.from(`${h}.${p}`),
    { key, dsaEncoding: "ieee-p1363" },
    Buffer.from(sig, "base64url"),
  );
  if (!ok) throw new Error("VAPID signature does not verify");
  const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as {
    aud: string;
    exp: number;
    sub: string;
  };
  if (claims.aud !== new URL(endpoint).origin)
    throw new Error(`VAPID aud ${claims.aud} is not the endpoint's origin`);
  if (claims.exp * 1000 <= Date.now()) throw new Error("VAPID token expired");
  return claims;
}
