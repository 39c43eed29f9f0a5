/** Helpers for integration tests against the testkit control plane. */
import { waitForCrdEstablished, type ControlPlane } from "@vibetalk/testkit";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const CRD_FILE = fileURLToPath(new URL("../../../crds/chatcluster.yaml", import.meta.url));

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export { waitFor } from "@vibetalk/testkit";

export async function getJson<T = Record<string, unknown>>(cp: ControlPlane, args: string[]): Promise<T> {
  return JSON.parse(await cp.kubectl([...args, "-o", "json"])) as T;
}

/** Returns the object, or undefined when kubectl says NotFound. */
export async function getOrUndefined<T = Record<string, unknown>>(
  cp: ControlPlane,
  args: string[],
): Promise<T | undefined> {
  try {
    return await getJson<T>(cp, args);
  } catch (err) {
    if (err instanceof Error && /NotFound|not found/.test(err.message)) return undefined;
    throw err;
  }
}

export async function applyYaml(cp: ControlPlane, yaml: string, extra: string[] = []): Promise<string> {
  return cp.kubectl(["apply", ...extra, "-f", "-"], { input: yaml });
}

/** Applies the CRD and waits until it is Established; creates the operator's namespace. */
export async function installCrd(cp: ControlPlane): Promise<void> {
  await cp.kubectl(["apply", "--server-side", "-f", CRD_FILE]);
  await waitForCrdEstablished(cp, "chatclusters.vibetalk.io");
  await cp.kubectl(["create", "namespace", "vibetalk-system"]);
}

export function chatClusterYaml(name: string, namespace: string, specLines: string[] = []): string {
  return [
    "apiVersion: vibetalk.io/v1alpha1",
    "kind: ChatCluster",
    `metadata: {name: ${name}, namespace: ${namespace}}`,
    "spec:",
    "  image: vibetalk/chat-node:test",
    "  rabbitmq: {secretRef: {name: rabbitmq}}",
    "  redis: {secretRef: {name: redis}}",
    "  mongodb: {secretRef: {name: mongodb}}",
    "  jwtSecretRef: {name: jwt}",
    ...specLines.map((l) => `  ${l}`),
    "",
  ].join("\n");
}

export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

export interface ChatClusterJson {
  metadata: { generation: number; finalizers?: string[]; uid: string };
  spec: Record<string, unknown>;
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    connections?: number;
    conditions?: Condition[];
    partitionAssignment?: { epoch: number; owners: Record<string, string> };
  };
}

export const conditionOf = (cc: ChatClusterJson | undefined, type: string) =>
  cc?.status?.conditions?.find((c) => c.type === type);

/**
 * Installs the operator's ServiceAccount and RBAC exactly as manifests/operator.yaml has them and
 * returns a kubeconfig holding a token of that ServiceAccount: the operator under test runs with the
 * least privilege it ships with, not as an admin.
 */
export async function operatorKubeconfig(
  cp: ControlPlane,
  o: { watchNamespace?: string } = {},
): Promise<string> {
  const { operatorRbac, OPERATOR_NAME, OPERATOR_NAMESPACE } =
    await import("../../src/manifests/operator-manifests.js");
  const list = { apiVersion: "v1", kind: "List", items: operatorRbac(o) };
  await cp.kubectl(["apply", "--server-side", "-f", "-"], { input: JSON.stringify(list) });
  const token = (
    await cp.kubectl(["-n", OPERATOR_NAMESPACE, "create", "token", OPERATOR_NAME, "--duration=2h"])
  ).trim();
  const path = join(cp.dir, "operator.kubeconfig");
  await writeFile(
    path,
    [
      "apiVersion: v1",
      "kind: Config",
      `clusters: [{name: test, cluster: {server: "${cp.server}", insecure-skip-tls-verify: true}}]`,
      `users: [{name: operator, user: {token: "${token}"}}]`,
      "contexts: [{name: operator, context: {cluster: test, user: operator}}]",
      "current-context: operator",
      "",
    ].join("\n"),
  );
  return path;
}
