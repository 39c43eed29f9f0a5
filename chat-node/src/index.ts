export { createChatNode, type ChatNode, type ChatNodeOptions } from "./node.js";
export {
  loadConfig,
  ConfigError,
  CONFIG_ENV_VARS,
  DEFAULT_FILE_TYPES,
  type ChatNodeConfig,
} from "./config.js";
export type { AssignmentSource } from "./ports.js";
export { StaticAssignmentSource } from "./partitions/static-assignment.js";
export { partitionOf, userExchangeOf, fnv1a32 } from "./domain/hashing.js";
export { parsePartitionSet, formatPartitionSet, diffPartitions } from "./domain/partitions.js";
export { topology } from "./domain/fanout.js";
export { PARTITION_QUEUE_ARGS } from "./adapters/rabbit-broker.js";
