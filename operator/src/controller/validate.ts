/**
 * Spec validation the operator does itself (pure). The CRD schema and its CEL rules reject most bad
 * specs at the API server; these checks repeat them (an old CRD or a schema-less client must never
 * lead to a half-applied cluster) and add what the schema cannot know: the values the running
 * chat-nodes were started with.
 */
import type { V1Deployment } from "@kubernetes/client-node";
import { validateAgainst } from "../api/schema.js";
import { chatClusterSpecSchema, MAX_NAME_LENGTH, NAME_PATTERN, type ChatCluster } from "../api/v1alpha1.js";
import { CHAT_NODE_CONTAINER } from "../resources/meta.js";

function crossFieldProblems(cluster: ChatCluster): string[] {
  const { spec } = cluster;
  const out: string[] = [];
  if (spec.autoscaling.minReplicas > spec.autoscaling.maxReplicas) {
    out.push(
      `spec.autoscaling: minReplicas ${spec.autoscaling.minReplicas} exceeds maxReplicas ${spec.autoscaling.maxReplicas}`,
    );
  }
  const pdb = spec.podDisruptionBudget;
  if (pdb.maxUnavailable !== undefined && pdb.minAvailable !== undefined) {
    out.push("spec.podDisruptionBudget: set at most one of maxUnavailable and minAvailable");
  }
  return out;
}

function nameProblems(name: string): string[] {
  const out: string[] = [];
  if (name.length > MAX_NAME_LENGTH) out.push(`metadata.name: must be at most ${MAX_NAME_LENGTH} characters`);
  if (!new RegExp(NAME_PATTERN).test(name)) out.push("metadata.name: must be a DNS-1035 label");
  return out;
}

/** PARTITIONS / USER_EXCHANGES the running chat-node template was started with. */
export function runningFixedValues(deployment: V1Deployment | undefined): {
  partitions?: number;
  userExchanges?: number;
} {
  const container = deployment?.spec?.template.spec?.containers.find((c) => c.name === CHAT_NODE_CONTAINER);
  const env = new Map((container?.env ?? []).map((e) => [e.name, e.value]));
  const num = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined);
  const partitions = num(env.get("PARTITIONS"));
  const userExchanges = num(env.get("USER_EXCHANGES"));
  return {
    ...(partitions !== undefined ? { partitions } : {}),
    ...(userExchanges !== undefined ? { userExchanges } : {}),
  };
}

function fixedFieldProblems(cluster: ChatCluster, deployment: V1Deployment | undefined): string[] {
  const running = runningFixedValues(deployment);
  const out: string[] = [];
  const fixed = (field: "partitions" | "userExchanges") => {
    const was = running[field];
    if (was !== undefined && was !== cluster.spec[field]) {
      out.push(
        `spec.${field}: changed from ${was} to ${cluster.spec[field]}, but it is fixed for the cluster's life ` +
          `(messages are routed by it); set it back to ${was} or create a new ChatCluster`,
      );
    }
  };
  fixed("partitions");
  fixed("userExchanges");
  return out;
}

/** Problems that stop the reconcile before anything is applied; empty when the spec is usable. */
export function validateCluster(cluster: ChatCluster, deployment: V1Deployment | undefined): string[] {
  const schema = validateAgainst(chatClusterSpecSchema.json, cluster.spec).map((p) => `spec.${p}`);
  return [
    ...nameProblems(cluster.metadata.name),
    ...schema,
    ...crossFieldProblems(cluster),
    ...fixedFieldProblems(cluster, deployment),
  ];
}
