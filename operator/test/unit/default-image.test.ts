import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import type { V1Deployment } from "@kubernetes/client-node";
import { loadConfig } from "../../src/config.js";
import { createReconciler } from "../../src/controller/reconcile.js";
import { buildCrd } from "../../src/crd/crd.js";
import { DEFAULT_CHAT_NODE_IMAGE, OPERATOR_VERSION } from "../../src/version.js";
import { FakeApi, fakeDeps } from "../support/fake-api.js";
import { makeCluster } from "../support/fixtures.js";

const imageOf = (api: FakeApi) =>
  (api.objects.get("Deployment/chat/demo") as V1Deployment | undefined)?.spec?.template.spec?.containers[0]
    ?.image;

test("the default chat-node image is the one of the operator's own version, under localhost/vibetalk", async () => {
  const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  assert.equal(OPERATOR_VERSION, pkg.version);
  assert.equal(DEFAULT_CHAT_NODE_IMAGE, `localhost/vibetalk/chat-node:${pkg.version}`);
  assert.equal(loadConfig({}).chatNodeImage, DEFAULT_CHAT_NODE_IMAGE);
  assert.equal(
    loadConfig({ CHAT_NODE_IMAGE: "localhost/vibetalk/chat-node:2.0.0" }).chatNodeImage,
    "localhost/vibetalk/chat-node:2.0.0",
  );
  assert.throws(() => loadConfig({ CHAT_NODE_IMAGE: "a b" }), /CHAT_NODE_IMAGE/);
});

test("the CRD no longer requires spec.image; a cluster without it runs the default, or the configured one", async () => {
  const spec = buildCrd().spec.versions[0]?.schema.openAPIV3Schema.properties?.spec as {
    required?: string[];
  };
  assert.deepEqual(spec.required, ["rabbitmq", "redis", "mongodb", "jwtSecretRef"]);

  const api = new FakeApi();
  api.clusters.set("chat/demo", makeCluster({ image: undefined }));
  await createReconciler(fakeDeps(api).deps)("chat/demo");
  assert.equal(imageOf(api), DEFAULT_CHAT_NODE_IMAGE);

  const other = new FakeApi();
  other.clusters.set("chat/demo", makeCluster({ image: undefined }));
  await createReconciler({ ...fakeDeps(other).deps, defaultImage: "localhost/vibetalk/chat-node:2.0.0" })(
    "chat/demo",
  );
  assert.equal(imageOf(other), "localhost/vibetalk/chat-node:2.0.0");

  const pinned = new FakeApi();
  pinned.clusters.set("chat/demo", makeCluster({ image: "localhost/vibetalk/chat-node:9.0.0" }));
  await createReconciler(fakeDeps(pinned).deps)("chat/demo");
  assert.equal(imageOf(pinned), "localhost/vibetalk/chat-node:9.0.0", "spec.image wins");
});
