// Passwords and session tokens (services/auth.ts) on the in-memory revocations fake.
import assert from "node:assert/strict";
import { randomBytes, scryptSync } from "node:crypto";
import { describe, test } from "node:test";
import { ProtocolError } from "@vibetalk/protocol";
import { SignJWT } from "jose";
import {
  ARGON2,
  EXAMPLE_SECRETS,
  hashPassword,
  jwtSecretProblem,
  TokenService,
  verifyPassword,
} from "../../src/services/auth.js";
import { MemoryRevocations, revocationsContract } from "../support/revocations.js";

const OLD = "old-secret-0123456789abcdef0123456789";
const NEW = "new-secret-0123456789abcdef0123456789";
const USER = "0123456789abcdef01234567";

const refused = (code: string) => (err: unknown) => err instanceof ProtocolError && err.code === code;

describe("passwords", () => {
  test("Argon2id at OWASP's settings; the right password verifies, a wrong one does not", async () => {
    const h = await hashPassword("correct horse battery");
    assert.match(h, new RegExp(`^\\$argon2id\\$v=19\\$m=${ARGON2.memoryCost},t=${ARGON2.timeCost},p=1\\$`));
    assert.deepEqual(await verifyPassword("correct horse battery", h), { ok: true, rehash: false });
    assert.deepEqual(await verifyPassword("correct horse batterY", h), { ok: false, rehash: false });
  });

  test("a scrypt hash of an earlier version verifies and asks for a rehash", async () => {
    const salt = randomBytes(16);
    const key = scryptSync("pässword".normalize("NFKC"), salt, 64, { N: 16384, r: 8, p: 1 });
    const legacy = ["scrypt", 16384, 8, 1, salt.toString("base64"), key.toString("base64")].join("$");
    assert.deepEqual(await verifyPassword("pässword", legacy), { ok: true, rehash: true });
    assert.deepEqual(await verifyPassword("password", legacy), { ok: false, rehash: false });
  });

  test("garbage in the stored hash never verifies", async () => {
    for (const stored of [
      "",
      "plain",
      "scrypt$1$2$3",
      "$argon2id$v=19$m=1,t=1,p=1$x$y",
      "scrypt$0$8$1$YQ==$YQ==",
    ]) {
      assert.equal((await verifyPassword("x", stored)).ok, false, stored);
    }
  });
});

describe("secrets", () => {
  test("at least 32 bytes, never the example's placeholder", () => {
    assert.match(jwtSecretProblem("a".repeat(31)) ?? "", /at least 32 bytes/);
    assert.equal(jwtSecretProblem("a".repeat(32)), null);
    for (const s of EXAMPLE_SECRETS) assert.match(jwtSecretProblem(s) ?? "", /placeholder/);
  });
});

describe("tokens", () => {
  test("issued tokens verify to their session", async () => {
    const t = new TokenService({ current: NEW }, 3600, new MemoryRevocations());
    const s = await t.verify(await t.issue(USER));
    assert.equal(s.userId, USER);
    assert.ok(s.tokenId.length >= 16);
    assert.ok(Math.abs(s.issuedAtMs - Date.now()) < 5000);
    assert.ok(s.expiresAtMs - Date.now() > 3500_000);
  });

  test("while rotating, tokens of the previous secret verify; after, they do not", async () => {
    const before = new TokenService({ current: OLD }, 3600, new MemoryRevocations());
    const rotating = new TokenService({ current: NEW, previous: OLD }, 3600, new MemoryRevocations());
    const after = new TokenService({ current: NEW }, 3600, new MemoryRevocations());
    const old = await before.issue(USER);
    assert.equal((await rotating.verify(old)).userId, USER);
    await assert.rejects(after.verify(old), refused("UNAUTHENTICATED"));
    assert.equal((await after.verify(await rotating.issue(USER))).userId, USER);
  });

  test("a token without expiry, id or issue time is refused", async () => {
    const t = new TokenService({ current: NEW }, 3600, new MemoryRevocations());
    const key = new TextEncoder().encode(NEW);
    const base = () =>
      new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(USER).setIssuer("vibetalk");
    const noExp = await base().setIssuedAt().setJti("j").sign(key);
    const noJti = await base().setIssuedAt().setExpirationTime("1h").sign(key);
    const noIat = await base().setJti("j").setExpirationTime("1h").sign(key);
    const ok = await base().setIssuedAt().setJti("j").setExpirationTime("1h").sign(key);
    for (const token of [noExp, noJti, noIat])
      await assert.rejects(t.verify(token), refused("UNAUTHENTICATED"));
    assert.equal((await t.verify(ok)).userId, USER);
  });

  test("logout ends one session; a password change ends those issued before it", async () => {
    const t = new TokenService({ current: NEW }, 3600, new MemoryRevocations());
    const a = await t.issue(USER);
    const b = await t.issue(USER);
    await t.revoke(await t.verify(a));
    await assert.rejects(t.verify(a), refused("UNAUTHENTICATED"));
    await t.verify(b);
    await t.revokeAll(USER);
    await assert.rejects(t.verify(b), refused("UNAUTHENTICATED"));
    await t.verify(await t.issue(USER));
  });

  test("when revocations cannot be read, the answer is UNAVAILABLE, not a session", async () => {
    const broken = new MemoryRevocations();
    broken.isRevoked = () => Promise.reject(new Error("redis down"));
    const t = new TokenService({ current: NEW }, 3600, broken);
    await assert.rejects(t.verify(await t.issue(USER)), refused("UNAVAILABLE"));
  });
});

describe("SessionRevocations contract", () => {
  revocationsContract("memory fake", () => new MemoryRevocations());
});
