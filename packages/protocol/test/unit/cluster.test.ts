import assert from "node:assert/strict";
import { test } from "node:test";
import { durableTopology, RABBITMQ } from "../../src/cluster.js";

test("the durable topology names every queue and exchange a cluster declares, the parked queue included", () => {
  assert.deepEqual(durableTopology({ partitions: 2, userExchanges: 2 }), {
    queues: ["vibetalk.partition.0", "vibetalk.partition.1", "vibetalk.parked"],
    exchanges: [
      "vibetalk.partitions",
      "vibetalk.users",
      "vibetalk.users.0",
      "vibetalk.users.1",
      "vibetalk.control",
      "vibetalk.channels",
    ],
  });
  assert.equal(RABBITMQ.nodeQueue("pod-a"), "vibetalk.node.pod-a");
});
