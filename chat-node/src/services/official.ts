import { OFFICIAL_CHANNEL_ID, ProtocolError, SERVICE_SENDER_ID, type Role } from "@vibetalk/protocol";
import type { OfficialConfig } from "../config.js";
import type { Logger } from "../logger.js";
import type { Broker, ChannelRecord, MemberRecord, Store } from "../ports.js";
import type { MembersCache } from "./members-cache.js";

/** How long the backfill waits after a failure (the store down) before it tries again. */
const BACKFILL_RETRY_MS = 5000;

export interface OfficialGroupDeps {
  config: OfficialConfig;
  store: Store;
  members: MembersCache;
  broker: Broker;
  /** This node's id, the origin of its control events. */
  nodeId: string;
  log: Logger;
}

/** Roles that may post when posting is `admins`, pin, and change the group's settings and roles. */
export const OFFICIAL_ADMIN_ROLES: readonly Role[] = ["owner", "admin"];

/** The official group's record as created at node start (docs/chat-node.md, "The official group"). */
export function officialChannelRecord(config: OfficialConfig, at: Date): ChannelRecord {
  return {
    id: OFFICIAL_CHANNEL_ID,
    type: "official",
    name: config.name,
    createdBy: SERVICE_SENDER_ID,
    createdAt: at,
    lastSeq: 0,
    lastMessage: null,
    lastMessageAt: at,
    memberCount: 0,
    posting: config.posting,
    pinnedSeq: null,
  };
}

/** POSTING_RESTRICTED unless `role` may post in the official group `channel` (I7: refused at the edge). */
export function requireOfficialPoster(channel: ChannelRecord, role: Role): void {
  if ((channel.posting ?? "admins") === "admins" && !OFFICIAL_ADMIN_ROLES.includes(role)) {
    throw new ProtocolError("POSTING_RESTRICTED", "only the official group's admins post in it");
  }
}

/**
 * The official group: created once per installation, every account a member (docs/chat-node.md,
 * "The official group"; docs/decisions.md 45–46).
 *
 * - `ensure` inserts the fixed id `official`: any number of nodes starting together create one
 *   (the second insert hits the duplicate key and reads the existing channel).
 * - `join` adds accounts (a member added twice is a no-op), raises the membership version (every
 *   node's next check sees them) and tells every node to drop its cached members (the partition
 *   owner's fan-out includes them from the next message on).
 * - `backfill` adds the accounts that existed before, in batches of `backfillBatch` ordered by
 *   user id; after each batch the resume point (the last id covered) is raised, forward only, on
 *   the channel's document. A node killed mid-way resumes there; nodes doing it at once add the
 *   same members twice at worst, and each skips to the furthest mark any of them wrote.
 */
export class OfficialGroup {
  private stopped = false;
  private running: Promise<void> | null = null;
  private retry: NodeJS.Timeout | null = null;

  constructor(private readonly d: OfficialGroupDeps) {}

  get name(): string {
    return this.d.config.name;
  }

  /** Creates the group if it does not exist yet; safe from every node at once. */
  async ensure(): Promise<{ channel: ChannelRecord; created: boolean }> {
    const r = await this.d.store.createChannel(officialChannelRecord(this.d.config, new Date()), []);
    if (r.created)
      this.d.log.info({ event: "official.created", name: r.channel.name }, "official group created");
    return r;
  }

  /** Adds accounts to the group (existing members are left as they are). */
  async join(userIds: readonly string[]): Promise<void> {
    if (userIds.length === 0) return;
    const at = new Date();
    const members: MemberRecord[] = userIds.map((userId) => ({
      channelId: OFFICIAL_CHANNEL_ID,
      userId,
      role: "member",
      joinedAt: at,
      lastDeliveredSeq: 0,
      lastReadSeq: 0,
    }));
    await this.d.store.addMembers(OFFICIAL_CHANNEL_ID, members);
    try {
      await this.d.members.changed(OFFICIAL_CHANNEL_ID);
      await this.d.broker.publishControl({
        t: "members",
        channelId: OFFICIAL_CHANNEL_ID,
        origin: this.d.nodeId,
      });
    } catch (err) {
      // Stored; other nodes' caches follow within MEMBERS_CACHE_TTL_MS.
      this.d.log.warn(
        { event: "official.version_failed", err: (err as Error).message },
        "official group membership version not raised",
      );
    }
  }

  /** The login safety net: joins a user who is not a member yet (a registration whose join failed). */
  async ensureMember(userId: string): Promise<void> {
    if (!(await this.d.store.getMember(OFFICIAL_CHANNEL_ID, userId))) await this.join([userId]);
  }

  /**
   * Adds every existing account, batch by batch from the stored resume point. `maxBatches` stops
   * early (a test's stand-in for a node killed mid-way). Returns the accounts covered by this call
   * and whether it reached the end.
   */
  async backfill(opts: { maxBatches?: number } = {}): Promise<{ covered: number; done: boolean }> {
    const batch = this.d.config.backfillBatch;
    let covered = 0;
    let batches = 0;
    let after = await this.d.store.backfillMark(OFFICIAL_CHANNEL_ID);
    while (!this.stopped) {
      if (opts.maxBatches !== undefined && batches >= opts.maxBatches) return { covered, done: false };
      const ids = await this.d.store.userIdsAfter(after, batch);
      const last = ids[ids.length - 1];
      if (last === undefined) return { covered, done: true };
      await this.join(ids);
      await this.d.store.raiseBackfillMark(OFFICIAL_CHANNEL_ID, last);
      covered += ids.length;
      batches++;
      // Another node may be further on: continue from the furthest mark.
      const mark = await this.d.store.backfillMark(OFFICIAL_CHANNEL_ID);
      after = mark !== null && mark > last ? mark : last;
      const channel = await this.d.store.getChannel(OFFICIAL_CHANNEL_ID);
      this.d.log.info(
        { event: "official.backfill", covered, members: channel?.memberCount ?? null, after },
        "official group backfill: batch added",
      );
      if (ids.length < batch) return { covered, done: true };
    }
    return { covered, done: false };
  }

  /** Runs the backfill in the background, retrying after failures, until done or stopped. */
  start(): void {
    const run = async (): Promise<void> => {
      try {
        const r = await this.backfill();
        if (r.done) {
          this.d.log.info(
            { event: "official.backfill_done", covered: r.covered },
            "official group backfill done",
          );
        }
      } catch (err) {
        if (this.stopped) return;
        this.d.log.warn(
          { event: "official.backfill_failed", err: (err as Error).message },
          "official group backfill failed; retrying",
        );
        this.retry = setTimeout(() => (this.running = run()), BACKFILL_RETRY_MS);
      }
    };
    this.running = run();
  }

  /** Stops the backfill after its current batch (its resume point is stored). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    await this.running;
  }
}
