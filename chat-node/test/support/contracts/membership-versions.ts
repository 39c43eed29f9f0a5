// The MembershipVersions contract (docs/chat-node.md#ports-and-fakes), run against
// RedisMembershipVersions on Redis (integration) and MemoryMembershipVersions (unit). `node()` gives
// one chat-node's adapter; all of them share one server, which is what makes a removal on one node
// visible to the membership checks of every other at once.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import type { MembershipVersions } from "../../../src/ports.js";

const id = () => randomBytes(8).toString("hex");

export function membershipVersionsContract(
  name: string,
  node: () => MembershipVersions | Promise<MembershipVersions>,
): void {
  test(`${name}: a channel never changed is at version 0; every bump raises it by one`, async () => {
    const v = await node();
    const ch = id();
    assert.equal(await v.get(ch), 0);
    await v.bump(ch);
    assert.equal(await v.get(ch), 1);
    await v.bump(ch);
    await v.bump(ch);
    assert.equal(await v.get(ch), 3);
    assert.equal(await v.get(id()), 0, "other channels are untouched");
  });

  test(`${name}: a bump on one node is seen by every other, concurrent bumps are all counted`, async () => {
    const [a, b] = [await node(), await node()];
    const ch = id();
    await a.bump(ch);
    assert.equal(await b.get(ch), 1);
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).bump(ch)));
    assert.equal(await a.get(ch), 21);
    assert.equal(await b.get(ch), 21);
  });
}
