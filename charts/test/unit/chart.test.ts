/**
 * The chart's static wiring, without helm: Chart.yaml's dependencies, the values each condition and
 * each subchart secret reference reads, the image values (VibeTalk's own and the bitnami charts'), the
 * CRD copy, and the ChatCluster spec defaults.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { OPERATOR_IMAGE } from "../../../operator/src/manifests/operator-manifests.js";
import {
  CHART_CRD,
  CHART_DIR,
  EXAMPLE_CHATCLUSTER,
  REPO_CRD,
  readYaml,
  readYamlDocs,
  type ChartYaml,
  type Values,
} from "../support/chart.js";

const chart = await readYaml<ChartYaml>(`${CHART_DIR}/Chart.yaml`);
const values = await readYaml<Values>(`${CHART_DIR}/values.yaml`);

/** values.a.b.c */
function valueAt(path: string): unknown {
  let v: unknown = values;
  for (const key of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** <image.registry>/<repository>:<appVersion>, as the chart's vibetalk.image helper writes it. */
const defaultImage = (repositoryPath: string): string =>
  `${String(valueAt("image.registry"))}/${String(valueAt(repositoryPath))}:${chart.appVersion}`;

test("Chart.yaml: apiVersion v2, named vibetalk, appVersion is the operator image's tag", () => {
  assert.equal(chart.apiVersion, "v2");
  assert.equal(chart.name, "vibetalk");
  assert.match(chart.version, /^\d+\.\d+\.\d+$/);
  assert.equal(chart.appVersion, OPERATOR_IMAGE.split(":").at(-1));
});

test("VibeTalk's images default to localhost/vibetalk/{operator,chat-node}:<appVersion>, those manifests/ use", async () => {
  assert.equal(valueAt("image.registry"), "localhost", "scripts/images builds them as localhost/…");
  assert.equal(valueAt("operator.image.repository"), "vibetalk/operator");
  assert.equal(valueAt("operator.image.tag"), "", "the tag defaults to appVersion");
  assert.equal(valueAt("operator.image.pullPolicy"), "IfNotPresent", "a loaded image is never pulled");
  assert.equal(valueAt("chatCluster.image.repository"), "vibetalk/chat-node");
  assert.equal(valueAt("chatCluster.image.tag"), "", "the tag defaults to appVersion");
  assert.equal(valueAt("chatCluster.spec.image"), "", "empty: chatCluster.image fills it in");
  assert.equal(defaultImage("operator.image.repository"), OPERATOR_IMAGE);
  const example = (await readYamlDocs(EXAMPLE_CHATCLUSTER)).find((d) => d.kind === "ChatCluster") as
    { spec: { image: string } } | undefined;
  assert.equal(defaultImage("chatCluster.image.repository"), example?.spec.image);
  // global.imageRegistry would also relocate every bitnami image: the chart's own registry is image.registry.
  assert.equal(valueAt("global.imageRegistry"), undefined);
});

/**
 * Every image of the pinned bitnami charts, by values key: the list each chart's NOTES.txt passes to
 * common.errors.insecureImages, read from bitnami/charts at these versions (values.yaml says more).
 * Raising a version in Chart.yaml fails this test until the list is checked again.
 */
const BITNAMI_IMAGES: Record<string, { version: string; images: Record<string, string> }> = {
  rabbitmq: {
    version: "16.0.16",
    images: { image: "rabbitmq", "volumePermissions.image": "os-shell" },
  },
  mongodb: {
    version: "17.0.2",
    images: {
      image: "mongodb",
      "tls.image": "nginx",
      "externalAccess.autoDiscovery.image": "kubectl",
      "externalAccess.dnsCheck.image": "os-shell",
      "volumePermissions.image": "os-shell",
      "metrics.image": "mongodb-exporter",
    },
  },
  redis: {
    version: "23.1.1",
    images: {
      image: "redis",
      "sentinel.image": "redis-sentinel",
      "metrics.image": "redis-exporter",
      "volumePermissions.image": "os-shell",
      "kubectl.image": "kubectl",
      "sysctl.image": "os-shell",
    },
  },
};

test("the bitnami charts' images come from bitnamilegacy (their versioned tags moved there in 2025), with the charts' own tags", () => {
  for (const d of chart.dependencies ?? []) {
    const known = BITNAMI_IMAGES[d.name];
    assert.ok(known, d.name);
    assert.equal(d.version, known.version, `${d.name}: a new version, check its images and update this list`);
    for (const [key, name] of Object.entries(known.images)) {
      const image = valueAt(`${d.name}.${key}`) as Record<string, unknown> | undefined;
      assert.deepEqual(
        image,
        { repository: `bitnamilegacy/${name}` },
        `${d.name}.${key}: only the repository is replaced (registry and tag stay the chart's)`,
      );
    }
  }
  // The pinned rabbitmq chart's common library refuses a replaced repository without this switch.
  assert.equal(valueAt("global.security.allowInsecureImages"), true);
});

test("an uninstall keeps the bundled MongoDB's volume, like the Secret with the passwords it was made with", () => {
  // Standalone MongoDB is a Deployment with a PVC of the chart's own; the StatefulSets' claims stay anyway.
  assert.equal(valueAt("mongodb.persistence.resourcePolicy"), "keep");
});

test("Chart.yaml depends on bitnami rabbitmq, mongodb and redis, each pinned and switchable", () => {
  const deps = chart.dependencies ?? [];
  assert.deepEqual(deps.map((d) => d.name).sort(), ["mongodb", "rabbitmq", "redis"]);
  for (const d of deps) {
    assert.equal(d.alias, undefined, `${d.name}: an alias would rename its Services and values key`);
    assert.match(d.version, /^\d+\.\d+\.\d+$/, `${d.name}: pin an exact version, not a range`);
    assert.equal(d.repository, "@bitnami", `${d.name}: from the repository the user added as bitnami`);
    assert.equal(d.condition, `${d.name}.enabled`);
    assert.equal(typeof valueAt(`${d.name}.enabled`), "boolean", `values.yaml sets ${d.name}.enabled`);
  }
});

test("the bitnami charts read their passwords from the chart's backends Secret, by the keys it writes", async () => {
  const secretName = "{{ .Release.Name }}-backends";
  const helpers = await readFile(`${CHART_DIR}/templates/_helpers.tpl`, "utf8");
  assert.match(helpers, /printf "%s-backends" \.Release\.Name/, "vibetalk.backendsSecretName");
  const template = await readFile(`${CHART_DIR}/templates/backends-secret.yaml`, "utf8");
  const refs: [string, string | undefined][] = [
    ["rabbitmq.auth.existingPasswordSecret", "rabbitmq.auth.existingSecretPasswordKey"],
    ["rabbitmq.auth.existingErlangSecret", "rabbitmq.auth.existingSecretErlangKey"],
    ["redis.auth.existingSecret", "redis.auth.existingSecretPasswordKey"],
    // bitnami mongodb reads fixed keys from auth.existingSecret
    ["mongodb.auth.existingSecret", undefined],
  ];
  for (const [secretPath, keyPath] of refs) {
    assert.equal(valueAt(secretPath), secretName, secretPath);
    if (keyPath) {
      const key = valueAt(keyPath);
      assert.equal(typeof key, "string", keyPath);
      assert.ok(template.includes(`"${String(key)}"`), `the backends Secret writes ${String(key)}`);
    }
  }
  for (const key of ["mongodb-passwords", "mongodb-root-password"]) {
    assert.ok(template.includes(`"${key}"`), `the backends Secret writes ${key}`);
  }
  assert.deepEqual(valueAt("mongodb.auth.usernames"), ["vibetalk"]);
  assert.deepEqual(valueAt("mongodb.auth.databases"), ["vibetalk"]);
  assert.equal(valueAt("mongodb.architecture"), "standalone", "the URL names the standalone Service");
  assert.equal(valueAt("redis.architecture"), "standalone", "one master; the URL names <name>-redis-master");
});

test("the chart's CRD is the repository's crds/chatcluster.yaml, byte for byte (cp crds/chatcluster.yaml charts/vibetalk/crds/)", async () => {
  assert.equal(await readFile(CHART_CRD, "utf8"), await readFile(REPO_CRD, "utf8"));
});

test("chatCluster.spec only uses fields of the ChatCluster spec; the chart owns the secret references", async () => {
  const crd = await readYaml<{
    spec: {
      versions: {
        schema: { openAPIV3Schema: { properties: { spec: { properties: Record<string, unknown> } } } };
      }[];
    };
  }>(REPO_CRD);
  const fields = Object.keys(crd.spec.versions[0]?.schema.openAPIV3Schema.properties.spec.properties ?? {});
  const spec = valueAt("chatCluster.spec") as Record<string, unknown>;
  for (const key of Object.keys(spec)) assert.ok(fields.includes(key), `chatCluster.spec.${key}`);
  for (const key of ["rabbitmq", "redis", "mongodb", "jwtSecretRef"]) assert.ok(!(key in spec), key);
  assert.equal(valueAt("chatCluster.enabled"), true);
  assert.equal(valueAt("externalMetrics.enabled"), true);
});

test("the official group: the chart's defaults are the CRD's, and no service token unless one is given", async () => {
  const crd = await readYaml<{
    spec: {
      versions: {
        schema: {
          openAPIV3Schema: {
            properties: {
              spec: { properties: { officialGroup: { properties: Record<string, { default?: unknown }> } } };
            };
          };
        };
      }[];
    };
  }>(REPO_CRD);
  const fields =
    crd.spec.versions[0]?.schema.openAPIV3Schema.properties.spec.properties.officialGroup.properties;
  assert.deepEqual(
    ["enabled", "name", "posting"].map((k) => fields?.[k]?.default),
    ["enabled", "name", "posting"].map((k) => valueAt(`chatCluster.spec.officialGroup.${k}`)),
  );
  assert.ok(fields?.["serviceTokenRef"], "the CRD takes a service token reference");
  assert.equal(valueAt("chatCluster.spec.officialGroup.serviceTokenRef"), undefined, "the chart fills it in");
  assert.equal(valueAt("chatCluster.officialServiceToken"), "");
});
