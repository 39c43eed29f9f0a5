import { applyDefaults } from "../../src/api/schema.js";
import {
  API_VERSION,
  chatClusterSpecSchema,
  KIND,
  type ChatCluster,
  type ChatClusterMetadata,
  type ChatClusterSpec,
  type ChatClusterSpecInput,
} from "../../src/api/v1alpha1.js";

export const minimalSpec: ChatClusterSpecInput = {
  image: "vibetalk/chat-node:1.0.0",
  rabbitmq: { secretRef: { name: "rabbitmq" } },
  redis: { secretRef: { name: "redis" } },
  mongodb: { secretRef: { name: "mongodb" } },
  jwtSecretRef: { name: "jwt" },
};

/** A ChatCluster as the API server would return it: defaults applied. */
export function makeCluster(
  spec: Partial<ChatClusterSpecInput> = {},
  metadata: Partial<ChatClusterMetadata> = {},
): ChatCluster {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: "demo", namespace: "chat", uid: "uid-1234", generation: 1, ...metadata },
    spec: applyDefaults(chatClusterSpecSchema.json, { ...minimalSpec, ...spec }) as ChatClusterSpec,
  };
}
