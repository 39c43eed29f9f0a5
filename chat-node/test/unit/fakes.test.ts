// The port contracts on the in-memory fakes (docs/chat-node.md#ports-and-fakes); the same suites run
// on the real adapters and servers in test/integration/contracts.test.ts.
import { presenceContract } from "../support/contracts/presence.js";
import { storeContract } from "../support/contracts/store.js";
import { MemoryPresenceServer } from "../support/fakes/memory-presence.js";
import { MemoryStore } from "../support/fakes/memory-store.js";

storeContract("MemoryStore", () => new MemoryStore());

const presence = new MemoryPresenceServer();
presenceContract("MemoryPresence", (nodeId, ttlMs) => presence.node(nodeId, ttlMs));
