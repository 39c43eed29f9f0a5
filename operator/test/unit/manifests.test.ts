import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadAll } from "js-yaml";
import { applyDefaults } from "../../src/api/schema.js";
import { chatClusterSpecSchema, type ChatCluster, type ChatClusterSpec } from "../../src/api/v1alpha1.js";
import { validateCluster } from "../../src/controller/validate.js";
import { OPERATOR_MANIFEST_PATH, operatorManifestText } from "../../src/manifests/generate.js";
import { operatorManifests } from "../../src/manifests/operator-manifests.js";
import { operatorRules } from "../../src/manifests/rbac.js";
import { chatNodeRules } from "../../src/resources/role.js";

const EXAMPLE = fileURLToPath(new URL("../../../manifests/examples/chatcluster.yaml", import.meta.url));

test("manifests/operator.yaml is exactly the generator's output (npm run gen:manifests -w @vibetalk/operator)", async () => {
  assert.equal(await readFile(OPERATOR_MANIFEST_PATH, "utf8"), await operatorManifestText());
});

test("the bundle has every piece of the install", () => {
  const kinds = operatorManifests().map((o) => `${o.kind}/${o.metadata?.name ?? ""}`);
  for (const k of [
    "Namespace/vibetalk-system",
    "ServiceAccount/vibetalk-operator",
    "ClusterRole/vibetalk-operator",
    "ClusterRoleBinding/vibetalk-operator",
    "Deployment/vibetalk-operator",
    "Service/vibetalk-operator",
    "APIService/v1beta1.external.metrics.k8s.io",
  ]) {
    assert.ok(kinds.includes(k), k);
  }
});

test("the operator holds every permission it grants chat-nodes (RBAC forbids escalation)", () => {
  const rules = operatorRules();
  for (const need of chatNodeRules("x")) {
    for (const resource of need.resources ?? []) {
      for (const verb of need.verbs) {
        const ok = rules.some(
          (r) =>
            r.apiGroups?.includes(need.apiGroups?.[0] ?? "") &&
            r.resources?.includes(resource) &&
            r.verbs.includes(verb) &&
            !r.resourceNames,
        );
        assert.ok(ok, `operator lacks ${verb} ${resource}`);
      }
    }
  }
  for (const r of rules)
    assert.ok(!r.verbs.includes("*") && !(r.resources ?? []).includes("*"), JSON.stringify(r));
});

test("the example ChatCluster is valid against the schema and the operator's checks", async () => {
  const docs = loadAll(await readFile(EXAMPLE, "utf8")) as {
    kind: string;
    metadata: { name: string; namespace: string };
    spec: unknown;
  }[];
  const doc = docs.find((d) => d.kind === "ChatCluster");
  assert.ok(doc);
  const cluster: ChatCluster = {
    apiVersion: "vibetalk.io/v1alpha1",
    kind: "ChatCluster",
    metadata: { ...doc.metadata, uid: "u" },
    spec: applyDefaults(chatClusterSpecSchema.json, doc.spec) as ChatClusterSpec,
  };
  assert.deepEqual(validateCluster(cluster, undefined), []);
});
