// MembershipVersions in memory: one shared counter per channel, as RedisMembershipVersions keeps in Redis.
import type { MembershipVersions } from "../../../src/ports.js";

export class MemoryMembershipVersions implements MembershipVersions {
  private readonly versions = new Map<string, number>();

  async get(channelId: string): Promise<number> {
    return this.versions.get(channelId) ?? 0;
  }

  async bump(channelId: string): Promise<void> {
    this.versions.set(channelId, (this.versions.get(channelId) ?? 0) + 1);
  }
}
