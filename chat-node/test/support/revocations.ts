// The SessionRevocations contract, run against the Redis adapter (integration) and the in-memory fake
// (unit): both must end sessions the same way.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import type { SessionRevocations } from "../../src/ports.js";

/** An in-memory SessionRevocations for unit tests. */
export class MemoryRevocations implements SessionRevocations {
  private readonly tokens = new Map<string, number>();
  private readonly users = new Map<string, { at: number; until: number }>();

  async revokeToken(tokenId: string, untilMs: number): Promise<void> {
    this.tokens.set(tokenId, untilMs);
  }

  async revokeUser(userId: string, atMs: number, untilMs: number): Promise<void> {
    const cur = this.users.get(userId);
    if (!cur || cur.until < Date.now() || atMs > cur.at) this.users.set(userId, { at: atMs, until: untilMs });
  }

  async isRevoked(s: { userId: string; tokenId: string; issuedAtMs: number }): Promise<boolean> {
    const now = Date.now();
    const t = this.tokens.get(s.tokenId);
    if (t !== undefined && t > now) return true;
    const u = this.users.get(s.userId);
    return u !== undefined && u.until > now && s.issuedAtMs < u.at;
  }
}

const id = () => randomBytes(12).toString("hex");

export function revocationsContract(name: string, make: () => SessionRevocations): void {
  test(`${name}: a revoked token is refused, others of the user are not`, async () => {
    const r = make();
    const user = id();
    const now = Date.now();
    await r.revokeToken("t1", now + 60_000);
    assert.equal(await r.isRevoked({ userId: user, tokenId: "t1", issuedAtMs: now }), true);
    assert.equal(await r.isRevoked({ userId: user, tokenId: "t2", issuedAtMs: now }), false);
  });

  test(`${name}: revoking a user ends sessions issued before, not after`, async () => {
    const r = make();
    const user = id();
    const other = id();
    const at = Date.now();
    await r.revokeUser(user, at, at + 60_000);
    assert.equal(await r.isRevoked({ userId: user, tokenId: id(), issuedAtMs: at - 1 }), true);
    assert.equal(await r.isRevoked({ userId: user, tokenId: id(), issuedAtMs: at }), false);
    assert.equal(await r.isRevoked({ userId: other, tokenId: id(), issuedAtMs: at - 1 }), false);
  });

  test(`${name}: an earlier cut-off never moves a later one back`, async () => {
    const r = make();
    const user = id();
    const at = Date.now();
    await r.revokeUser(user, at, at + 60_000);
    await r.revokeUser(user, at - 10_000, at + 60_000);
    assert.equal(await r.isRevoked({ userId: user, tokenId: id(), issuedAtMs: at - 5_000 }), true);
  });

  test(`${name}: revocations lapse when the tokens they cover have expired`, async () => {
    const r = make();
    const user = id();
    const at = Date.now();
    await r.revokeToken("short", at + 150);
    await r.revokeUser(user, at, at + 150);
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(await r.isRevoked({ userId: user, tokenId: "short", issuedAtMs: at - 1 }), false);
  });
}
