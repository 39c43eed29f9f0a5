/**
 * `<name>-releases`: the release records (pure). The operator creates it empty and never applies
 * `data`, so server-side apply leaves the chat-nodes' keys alone. Each key is a partition number
 * (decimal) and each value a JSON `ReleaseRecord`; see docs/operator.md for the protocol.
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import { objectMeta, ownedNames } from "./meta.js";

/** Who may consume a partition. `holder: ""` means released: anyone assigned may claim it. */
export interface ReleaseRecord {
  /** The pod consuming (or allowed to consume) the partition; "" once released. */
  holder: string;
  /** Assignment epoch the writer acted on. */
  epoch: number;
  /** Pod (or "operator") that last released it; absent on a claim. */
  releasedBy?: string;
  /** RFC 3339 time of the write. */
  at: string;
}

export function buildReleasesConfigMap(cluster: ChatCluster): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: objectMeta(cluster, ownedNames(cluster.metadata.name).releasesConfigMap, "partitions"),
  };
}

export function decodeReleaseRecord(text: string | undefined): ReleaseRecord | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as Partial<ReleaseRecord>;
    if (typeof v.holder !== "string" || !Number.isInteger(v.epoch) || typeof v.at !== "string")
      return undefined;
    return {
      holder: v.holder,
      epoch: v.epoch as number,
      at: v.at,
      ...(typeof v.releasedBy === "string" ? { releasedBy: v.releasedBy } : {}),
    };
  } catch {
    return undefined;
  }
}

/**
 * Release records held by pods that no longer exist, rewritten as released by the operator (pure):
 * a gone pod consumes nothing, so its partitions may be claimed. A pod that merely terminates is not
 * gone: it releases for itself after draining.
 */
export function releasesOfGonePods(
  data: Record<string, string>,
  existingPods: ReadonlySet<string>,
  epoch: number,
  now: Date,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [partition, text] of Object.entries(data)) {
    const rec = decodeReleaseRecord(text);
    if (!rec || rec.holder === "" || existingPods.has(rec.holder)) continue;
    const released: ReleaseRecord = { holder: "", epoch, releasedBy: "operator", at: now.toISOString() };
    out[partition] = JSON.stringify(released);
  }
  return out;
}
