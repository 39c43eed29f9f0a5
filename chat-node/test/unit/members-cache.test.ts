// MembersCache.audience for a large group inside its switch window (docs/chat-node.md, "Large
// channels"): members by name, read once per cache entry rather than once per message.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MembersCache } from "../../src/services/members-cache.js";
import { createLargeGroup as largeGroup } from "../support/fakes/large-group.js";
import { MemoryStore } from "../support/fakes/memory-store.js";

const SWITCH_MS = 3000;

test("a large group inside its switch window: every member by name, the list read once per entry", async () => {
  const store = new MemoryStore();
  const users = Array.from({ length: 120 }, (_, i) => `u${i}`);
  await largeGroup(store, "g", users, new Date());
  const cache = new MembersCache(store, 60_000);
  const entry = (await cache.get("g"))!;
  assert.equal(entry.large, true);
  assert.equal(entry.members.size, 1, "the entry of a large group lists only its owner and admins");
  const audiences = await Promise.all(Array.from({ length: 50 }, () => cache.audience(entry, SWITCH_MS)));
  for (const a of audiences) assert.deepEqual(a, users);
  assert.equal(store.calls.get("listMembers"), 1, "50 messages, one read of the member list");
});

test("a member added inside the window: the change drops the entry, and the next entry lists them", async () => {
  const store = new MemoryStore();
  await largeGroup(store, "g", ["a", "b"], new Date());
  const cache = new MembersCache(store, 60_000);
  assert.deepEqual(await cache.audience((await cache.get("g"))!, SWITCH_MS), ["a", "b"]);
  await store.addMembers("g", [
    {
      channelId: "g",
      userId: "c",
      role: "member",
      joinedAt: new Date(),
      lastDeliveredSeq: 0,
      lastReadSeq: 0,
    },
  ]);
  await cache.changed("g");
  assert.deepEqual(await cache.audience((await cache.get("g"))!, SWITCH_MS), ["a", "b", "c"]);
  assert.equal(store.calls.get("listMembers"), 2);
});

test("a failed read of the list is not kept: the next message reads again", async () => {
  const store = new MemoryStore();
  await largeGroup(store, "g", ["a", "b"], new Date());
  const cache = new MembersCache(store, 60_000);
  const entry = (await cache.get("g"))!;
  store.unavailable = true;
  await assert.rejects(cache.audience(entry, SWITCH_MS), /unavailable/);
  store.unavailable = false;
  assert.deepEqual(await cache.audience(entry, SWITCH_MS), ["a", "b"]);
});

test("past the switch window a large group goes by channel, with no member list read", async () => {
  const store = new MemoryStore();
  await largeGroup(store, "g", ["a", "b"], new Date(Date.now() - SWITCH_MS - 1));
  const cache = new MembersCache(store, 60_000);
  assert.equal(await cache.audience((await cache.get("g"))!, SWITCH_MS), "channel");
  assert.equal(store.calls.get("listMembers") ?? 0, 0);
});
