// The port contracts on the in-memory fakes (docs/chat-node.md#ports-and-fakes); the same suites run
// on the real adapters and servers in test/integration/contracts.test.ts.
import { brokerContract } from "../support/contracts/broker.js";
import { membershipVersionsContract } from "../support/contracts/membership-versions.js";
import { presenceContract } from "../support/contracts/presence.js";
import { pushThrottleContract } from "../support/contracts/push-throttle.js";
import { storeContract } from "../support/contracts/store.js";
import { MemoryBrokerServer } from "../support/fakes/memory-broker.js";
import { MemoryMembershipVersions } from "../support/fakes/memory-membership-versions.js";
import { MemoryPresenceServer } from "../support/fakes/memory-presence.js";
import { MemoryPushThrottle } from "../support/fakes/memory-push-throttle.js";
import { MemoryStore } from "../support/fakes/memory-store.js";

storeContract("MemoryStore", () => new MemoryStore());

const presence = new MemoryPresenceServer();
presenceContract("MemoryPresence", (nodeId, ttlMs) => presence.node(nodeId, ttlMs));

// One server's counters, shared by every node's adapter.
const versions = new MemoryMembershipVersions();
membershipVersionsContract("MemoryMembershipVersions", () => versions);

// One server's keys, shared by every node's adapter.
const throttle = new MemoryPushThrottle();
pushThrottleContract("MemoryPushThrottle", () => throttle);

const broker = new MemoryBrokerServer(64, 5);
brokerContract("MemoryBroker", (nodeId) => broker.connect(nodeId), {
  partitions: 64,
  fanoutMaxRecipients: 5,
  quietMs: 20,
});
