// A group already marked large, made straight on a store (unit tests of large channels,
// docs/chat-node.md "Large channels"): the first member is its owner.
import type { ChannelStore } from "../../../src/ports.js";

export async function createLargeGroup(
  store: Pick<ChannelStore, "createChannel">,
  id: string,
  members: string[],
  largeSince = new Date(),
): Promise<void> {
  const now = new Date();
  await store.createChannel(
    {
      id,
      type: "group",
      name: id,
      createdBy: members[0] ?? "x",
      createdAt: now,
      lastSeq: 0,
      lastMessage: null,
      lastMessageAt: now,
      memberCount: members.length,
      largeSince,
    },
    members.map((userId, i) => ({
      channelId: id,
      userId,
      role: i === 0 ? "owner" : "member",
      joinedAt: now,
      lastDeliveredSeq: 0,
      lastReadSeq: 0,
    })),
  );
}
