import type { AssignmentSource } from "../ports.js";

/** Ownership from configuration (OWNED_PARTITIONS): fixed for the life of the process. */
export class StaticAssignmentSource implements AssignmentSource {
  constructor(private readonly owned: ReadonlySet<number>) {}

  async start(onChange: (owned: Set<number>) => Promise<void>): Promise<void> {
    await onChange(new Set(this.owned));
  }

  async stop(): Promise<void> {
    // nothing to watch
  }
}
