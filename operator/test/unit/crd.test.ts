import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { load } from "js-yaml";
import { buildCrd } from "../../src/crd/crd.js";
import { CRD_PATH, crdFileText } from "../../src/crd/generate.js";

test("crds/chatcluster.yaml is exactly the generator's output (run npm run gen:crd -w @vibetalk/operator)", async () => {
  const committed = await readFile(CRD_PATH, "utf8");
  assert.equal(committed, await crdFileText());
});

test("the committed YAML parses back to the CRD object", async () => {
  assert.deepEqual(load(await readFile(CRD_PATH, "utf8")), JSON.parse(JSON.stringify(buildCrd())));
});

test("CRD names, scope, subresources and printer columns", () => {
  const crd = buildCrd();
  assert.equal(crd.metadata.name, "chatclusters.vibetalk.io");
  assert.deepEqual(crd.spec.names.shortNames, ["cc"]);
  assert.equal(crd.spec.scope, "Namespaced");
  const v = crd.spec.versions[0];
  assert.ok(v);
  assert.equal(v.name, "v1alpha1");
  assert.deepEqual(v.subresources.scale, {
    specReplicasPath: ".spec.replicas",
    statusReplicasPath: ".status.replicas",
    labelSelectorPath: ".status.selector",
  });
  assert.deepEqual(
    v.additionalPrinterColumns.map((c) => c.name),
    ["Ready", "Replicas", "Ready-Pods", "Connections", "Partitions", "Degraded", "Age"],
  );
});

test("partitions and userExchanges carry the immutability rule with defaults and bounds", () => {
  const spec = buildCrd().spec.versions[0]?.schema.openAPIV3Schema.properties?.spec;
  const partitions = spec?.properties?.partitions;
  assert.deepEqual(partitions?.["x-kubernetes-validations"], [
    { rule: "self == oldSelf", message: "partitions is immutable" },
  ]);
  assert.equal(partitions?.default, 64);
  assert.equal(partitions?.minimum, 1);
  assert.equal(partitions?.maximum, 1024);
  const ux = spec?.properties?.userExchanges;
  assert.equal(ux?.default, 16);
  assert.equal(ux?.["x-kubernetes-validations"]?.[0]?.rule, "self == oldSelf");
  assert.equal(spec?.properties?.deletionPolicy?.default, "Retain");
});
