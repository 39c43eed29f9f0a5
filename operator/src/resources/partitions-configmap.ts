/**
 * `<name>-partitions`: the partition assignment the chat-nodes watch (pure).
 * data["assignment.json"] = {"epoch": <int>, "owners": {"<partition>": "<pod name>", ...}}.
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import type { ChatCluster, PartitionAssignment } from "../api/v1alpha1.js";
import { ASSIGNMENT_KEY, objectMeta, ownedNames } from "./meta.js";

/** Owners in ascending partition order, so equal assignments encode to equal text. */
export function encodeAssignment(a: PartitionAssignment): string {
  const owners: Record<string, string> = {};
  for (const k of Object.keys(a.owners).sort((x, y) => Number(x) - Number(y))) {
    const pod = a.owners[k];
    if (pod !== undefined) owners[k] = pod;
  }
  return JSON.stringify({ epoch: a.epoch, owners });
}

/** Parses assignment.json; undefined when absent or malformed (the operator then starts afresh). */
export function decodeAssignment(text: string | undefined): PartitionAssignment | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const { epoch, owners } = v as { epoch?: unknown; owners?: unknown };
  if (!Number.isInteger(epoch) || (epoch as number) < 0) return undefined;
  if (typeof owners !== "object" || owners === null || Array.isArray(owners)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, pod] of Object.entries(owners)) {
    if (!/^\d+$/.test(k) || typeof pod !== "string" || pod === "") return undefined;
    out[k] = pod;
  }
  return { epoch: epoch as number, owners: out };
}

export function buildPartitionsConfigMap(cluster: ChatCluster, assignment: PartitionAssignment): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: objectMeta(cluster, ownedNames(cluster.metadata.name).partitionsConfigMap, "partitions"),
    data: { [ASSIGNMENT_KEY]: encodeAssignment(assignment) },
  };
}
