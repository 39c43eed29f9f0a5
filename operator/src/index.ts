/** The operator's public surface: the ChatCluster API types and the chat-node contract. */
export * from "./api/v1alpha1.js";
export { assignPartitions, movedPartitions } from "./assignment.js";
export {
  ANNOTATION_CONNECTIONS,
  ANNOTATION_SPEC_HASH,
  ASSIGNMENT_KEY,
  CHAT_NODE_PORT,
  FIELD_MANAGER,
  ownedNames,
  podSelector,
} from "./resources/meta.js";
export { decodeAssignment, encodeAssignment } from "./resources/partitions-configmap.js";
export { decodeReleaseRecord, type ReleaseRecord } from "./resources/releases-configmap.js";
export { CONNECTIONS_METRIC, METRIC_CLUSTER_LABEL } from "./resources/hpa.js";
