import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { ChatNode } from "../../src/node.js";
import { startNode, startServices, TestUser, type Services } from "../support/harness.js";

let services: Services;
const nodes: ChatNode[] = [];

before(async () => {
  services = await startServices();
  nodes.push(await startNode(services, { OWNED_PARTITIONS: "all" }));
  nodes.push(await startNode(services));
});
after(async () => {
  for (const n of nodes) await n.stop();
  await services?.stop();
});

test("a direct message crosses nodes", async () => {
  const [a, b] = nodes as [ChatNode, ChatNode];
  const alice = await TestUser.register(a, "alice");
  const bob = await TestUser.register(b, "bob");
  const ch = await alice.direct(a, bob);
  const sa = await alice.connect(a);
  const sb = await bob.connect(b);
  const reply = await sa.send(ch.id, "hello bob");
  assert.deepEqual(reply.ok, true);
  const [m] = await sb.waitMessages(ch.id, 1);
  assert.equal(m?.body, "hello bob");
  assert.equal(m?.seq, 1);
  const [own] = await sa.waitMessages(ch.id, 1);
  assert.equal(own?.seq, 1);
  alice.closeAll();
  bob.closeAll();
});
