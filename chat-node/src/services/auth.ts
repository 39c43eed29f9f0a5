import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from "node:crypto";
import { hash as argon2Hash, verify as argon2Verify, type Algorithm } from "@node-rs/argon2";
import { ProtocolError } from "@vibetalk/protocol";
import { SignJWT, decodeProtectedHeader, jwtVerify } from "jose";
import type { SessionRevocations } from "../ports.js";

/**
 * Password hashing: Argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane; about 25 ms
 * here), the PHC string format. Hashes made with weaker settings (the scrypt `scrypt$N$r$p$…` of
 * earlier versions, or an Argon2id below these) still verify and are rehashed at the next login
 * (docs/security.md).
 */
export const ARGON2 = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** `Algorithm.Argon2id` (a const enum, which isolated modules cannot read). */
const ARGON2ID = 2 as Algorithm;
const argon2Options = { algorithm: ARGON2ID, ...ARGON2 };

export function hashPassword(password: string): Promise<string> {
  return argon2Hash(password.normalize("NFKC"), argon2Options);
}

export interface PasswordCheck {
  ok: boolean;
  /** The stored hash is weaker than today's settings: store a fresh one. */
  rehash: boolean;
}

export async function verifyPassword(password: string, stored: string): Promise<PasswordCheck> {
  const normalized = password.normalize("NFKC");
  if (stored.startsWith("$argon2id$")) {
    const ok = await argon2Verify(stored, normalized).catch(() => false);
    return { ok, rehash: ok && weakerArgon2(stored) };
  }
  if (stored.startsWith("scrypt$")) {
    const ok = await verifyScrypt(normalized, stored);
    return { ok, rehash: ok };
  }
  return { ok: false, rehash: false };
}

function weakerArgon2(stored: string): boolean {
  const m = /\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(stored);
  if (!m) return true;
  return Number(m[1]) < ARGON2.memoryCost || Number(m[2]) < ARGON2.timeCost;
}

/** `scrypt$N$r$p$<salt b64>$<hash b64>`: the format of earlier versions, verified only. */
async function verifyScrypt(password: string, stored: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 6) return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  const salt = Buffer.from(parts[4] ?? "", "base64");
  const expected = Buffer.from(parts[5] ?? "", "base64");
  if (!N || !r || !p || expected.length === 0 || N > 2 ** 20) return false;
  const key = await new Promise<Buffer>((resolve, reject) =>
    scryptCb(password, salt, expected.length, { N, r, p, maxmem: 256 * 1024 * 1024 }, (err, k) =>
      err ? reject(err) : resolve(k),
    ),
  );
  return timingSafeEqual(key, expected);
}

/** The least a JWT secret may be, in bytes of UTF-8 (HS256 wants a key of at least its output size). */
export const JWT_SECRET_MIN_BYTES = 32;

/** Secrets that appear in VibeTalk's own examples and docs: never accepted. */
export const EXAMPLE_SECRETS: readonly string[] = ["change-me-to-at-least-32-random-characters"];

/** Why a JWT secret is refused, or null when it may be used. */
export function jwtSecretProblem(secret: string): string | null {
  if (EXAMPLE_SECRETS.includes(secret))
    return "is the example's placeholder: generate one, e.g. `openssl rand -hex 32`";
  if (Buffer.byteLength(secret, "utf8") < JWT_SECRET_MIN_BYTES)
    return `must be at least ${JWT_SECRET_MIN_BYTES} bytes (e.g. \`openssl rand -hex 32\`)`;
  return null;
}

/** A verified session: who, which token, when it was issued. */
export interface Session {
  userId: string;
  tokenId: string;
  issuedAtMs: number;
  expiresAtMs: number;
}

interface SigningKey {
  kid: string;
  key: Uint8Array;
}

function signingKey(secret: string): SigningKey {
  const key = new TextEncoder().encode(secret);
  return { kid: createHash("sha256").update(key).digest("hex").slice(0, 16), key };
}

/**
 * Session tokens: HS256 JWTs whose subject is the user id, each with an id (`jti`), its issue time in
 * milliseconds (`ims`) and an expiry (required). Signed with the current secret; tokens of the previous
 * secret (JWT_PREVIOUS_SECRET) still verify while keys rotate. A token is valid only while it is not
 * revoked: by logout (that token) or a password change (every session issued before it).
 */
export class TokenService {
  private readonly current: SigningKey;
  private readonly keys: SigningKey[];

  constructor(
    secrets: { current: string; previous?: string | undefined },
    private readonly ttlSeconds: number,
    private readonly revocations: SessionRevocations,
  ) {
    this.current = signingKey(secrets.current);
    this.keys = [this.current, ...(secrets.previous ? [signingKey(secrets.previous)] : [])];
  }

  async issue(userId: string): Promise<string> {
    const now = Date.now();
    return new SignJWT({ ims: now })
      .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: this.current.kid })
      .setSubject(userId)
      .setIssuer("vibetalk")
      .setJti(randomBytes(16).toString("base64url"))
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(now / 1000) + this.ttlSeconds)
      .sign(this.current.key);
  }

  /** The session of a valid, unrevoked token; UNAUTHENTICATED otherwise (UNAVAILABLE if that cannot be known). */
  async verify(token: unknown): Promise<Session> {
    const session = await this.decode(token);
    let revoked: boolean;
    try {
      revoked = await this.revocations.isRevoked(session);
    } catch {
      throw new ProtocolError("UNAVAILABLE", "sessions cannot be checked right now; retry");
    }
    if (revoked) throw new ProtocolError("UNAUTHENTICATED", "this session has ended; log in again");
    return session;
  }

  private async decode(token: unknown): Promise<Session> {
    if (typeof token !== "string" || token.length === 0 || token.length > 4096) {
      throw new ProtocolError("UNAUTHENTICATED", "a session token is required");
    }
    try {
      const { kid } = decodeProtectedHeader(token);
      const candidates = kid ? this.keys.filter((k) => k.kid === kid) : this.keys;
      for (const k of candidates) {
        const r = await jwtVerify(token, k.key, {
          algorithms: ["HS256"],
          issuer: "vibetalk",
          requiredClaims: ["exp", "iat", "jti", "sub"],
        }).catch(() => null);
        if (!r) continue;
        const p = r.payload;
        if (typeof p.sub !== "string" || !/^[a-f0-9]{24}$/.test(p.sub)) break;
        if (typeof p.jti !== "string" || p.exp === undefined || p.iat === undefined) break;
        const ims = typeof p["ims"] === "number" ? p["ims"] : p.iat * 1000;
        return { userId: p.sub, tokenId: p.jti, issuedAtMs: ims, expiresAtMs: p.exp * 1000 };
      }
    } catch {
      // malformed: below
    }
    throw new ProtocolError("UNAUTHENTICATED", "invalid or expired session token");
  }

  /** Ends one session (logout). */
  async revoke(session: Session): Promise<void> {
    await this.revocations.revokeToken(session.tokenId, session.expiresAtMs);
  }

  /** Ends every session of a user issued before now (password change); tokens issued after stay valid. */
  async revokeAll(userId: string): Promise<number> {
    const at = Date.now();
    await this.revocations.revokeUser(userId, at, at + this.ttlSeconds * 1000);
    return at;
  }
}
