/**
 * `<name>-partitions`: the partition assignment the chat-nodes watch (pure).
 * data["assignment.json"] = {"epoch": <int>, "owners": {"<partition>": "<pod name>", ...}}.
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import type { ChatCluster, PartitionAssignment } from "../api/v1alpha1.js";
import { decodeAssignment, encodeAssignment } from "@vibetalk/protocol/cluster";
import { ASSIGNMENT_KEY, objectMeta, ownedNames } from "./meta.js";

export { decodeAssignment, encodeAssignment };

export function buildPartitionsConfigMap(cluster: ChatCluster, assignment: PartitionAssignment): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: objectMeta(cluster, ownedNames(cluster.metadata.name).partitionsConfigMap, "partitions"),
    data: { [ASSIGNMENT_KEY]: encodeAssignment(assignment) },
  };
}
