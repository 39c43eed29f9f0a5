/** Server-side apply of the owned objects, skipped while nothing changed between resyncs. */
import type { ChatCluster } from "../api/v1alpha1.js";
import { hashOf } from "../resources/hash.js";
import { desiredObjects } from "../resources/index.js";
import { errorMessage } from "./errors.js";
import { StepError, type StepDeps } from "./step.js";

/** The last successful apply per ChatCluster key: identical re-applies are skipped until `resyncMs`. */
export class AppliedCache {
  private readonly last = new Map<string, { hash: string; at: number }>();
  constructor(readonly resyncMs: number) {}
  fresh(key: string, hash: string, now: number): boolean {
    const l = this.last.get(key);
    return l !== undefined && l.hash === hash && now - l.at < this.resyncMs;
  }
  set(key: string, hash: string, now: number): void {
    this.last.set(key, { hash, at: now });
  }
  /** The next apply of `key` goes to the API server whatever its hash. */
  forget(key: string): void {
    this.last.delete(key);
  }
}

export async function applyOwned(
  { api, events, clock }: StepDeps,
  applied: AppliedCache,
  key: string,
  cluster: ChatCluster,
  o: { initialReplicas?: number } = {},
): Promise<void> {
  const desired = desiredObjects(cluster, o);
  const hash = hashOf(desired);
  const now = clock.now().getTime();
  if (applied.fresh(key, hash, now)) return;
  applied.forget(key);
  for (const obj of desired.apply) {
    try {
      await api.apply(obj);
    } catch (err) {
      const message = `applying ${obj.kind} ${obj.metadata?.name ?? ""} failed: ${errorMessage(err)}`;
      throw new StepError({ reason: "ApplyFailed", message }, err);
    }
  }
  for (const ref of desired.remove) {
    try {
      if (await api.remove(ref))
        events.record(
          cluster,
          "Normal",
          "Deleted",
          "Delete",
          `Deleted ${ref.kind} ${ref.name}: the spec no longer asks for it.`,
        );
    } catch (err) {
      throw new StepError(
        { reason: "ApplyFailed", message: `deleting ${ref.kind} ${ref.name} failed: ${errorMessage(err)}` },
        err,
      );
    }
  }
  applied.set(key, hash, now);
  if (cluster.status?.observedGeneration !== cluster.metadata.generation) {
    events.record(
      cluster,
      "Normal",
      "Applied",
      "Apply",
      `Applied ${desired.apply.length} objects for generation ${cluster.metadata.generation ?? "?"}.`,
    );
  }
}
