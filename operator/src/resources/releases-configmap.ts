/**
 * `<name>-releases`: the release records (pure). The operator creates it empty and never applies
 * `data`, so server-side apply leaves the chat-nodes' keys alone. Each key is a partition number
 * (decimal) and each value a JSON `ReleaseRecord` (@vibetalk/protocol/cluster, the contract shared with
 * chat-node); see docs/operator.md for the protocol.
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import { decodeReleaseRecord, encodeReleaseRecord, type ReleaseRecord } from "@vibetalk/protocol/cluster";
import { objectMeta, ownedNames } from "./meta.js";

export { decodeReleaseRecord, encodeReleaseRecord, type ReleaseRecord };

export function buildReleasesConfigMap(cluster: ChatCluster): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: objectMeta(cluster, ownedNames(cluster.metadata.name).releasesConfigMap, "partitions"),
  };
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
    out[partition] = encodeReleaseRecord(released);
  }
  return out;
}
