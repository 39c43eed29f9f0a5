import assert from "node:assert/strict";
import { test } from "node:test";
import {
  apiResourceList,
  externalMetricValueList,
  parseLabelSelector,
} from "../../src/http/external-metrics.js";
import { createExternalMetricsServer } from "../../src/http/servers.js";

const now = new Date("2026-11-23T12:00:00.123Z");
const clusters = [
  { cluster: "beta", connections: 7 },
  { cluster: "alpha", connections: 1200 },
];

test("the HPA's selector cluster=<name> selects one cluster's sum", () => {
  const list = externalMetricValueList(clusters, "cluster=alpha", now);
  assert.equal(list.kind, "ExternalMetricValueList");
  assert.equal(list.apiVersion, "external.metrics.k8s.io/v1beta1");
  assert.deepEqual(list.items, [
    {
      metricName: "vibetalk_connections",
      metricLabels: { cluster: "alpha" },
      timestamp: "2026-11-23T12:00:00Z",
      value: "1200",
    },
  ]);
  assert.deepEqual(externalMetricValueList(clusters, "cluster=gamma", now).items, []);
  assert.deepEqual(
    externalMetricValueList(clusters, "", now).items.map((i) => i.metricLabels.cluster),
    ["alpha", "beta"],
  );
  assert.deepEqual(
    externalMetricValueList(clusters, "cluster in (beta,gamma)", now).items.map((i) => i.value),
    ["7"],
  );
  assert.deepEqual(
    externalMetricValueList(clusters, "cluster!=beta", now).items.map((i) => i.value),
    ["1200"],
  );
});

test("label selector parsing", () => {
  assert.deepEqual(parseLabelSelector("a=b,c==d,e!=f,g in (h, i),j notin (k),l,!m"), [
    { key: "a", op: "in", values: ["b"] },
    { key: "c", op: "in", values: ["d"] },
    { key: "e", op: "notin", values: ["f"] },
    { key: "g", op: "in", values: ["h", "i"] },
    { key: "j", op: "notin", values: ["k"] },
    { key: "l", op: "exists" },
    { key: "m", op: "!exists" },
  ]);
  assert.throws(() => parseLabelSelector("a=b=c"), /invalid label selector/);
});

test("discovery lists the metric as a namespaced resource", () => {
  const r = apiResourceList();
  assert.equal(r.groupVersion, "external.metrics.k8s.io/v1beta1");
  assert.deepEqual(
    r.resources.map((x) => [x.name, x.namespaced, x.kind]),
    [["vibetalk_connections", true, "ExternalMetricValueList"]],
  );
});

test("the HTTPS server answers discovery and metric requests", async () => {
  const app = await createExternalMetricsServer({
    connections: async (ns) => (ns === "chat" ? clusters : []),
  });
  try {
    const res = await app.inject({
      method: "GET",
      url: "/apis/external.metrics.k8s.io/v1beta1/namespaces/chat/vibetalk_connections?labelSelector=cluster%3Dbeta",
    });
    assert.equal(res.statusCode, 200);
    assert.equal((res.json() as { items: { value: string }[] }).items[0]?.value, "7");
    const disc = await app.inject({ method: "GET", url: "/apis/external.metrics.k8s.io/v1beta1" });
    assert.equal((disc.json() as { kind: string }).kind, "APIResourceList");
    const other = await app.inject({
      method: "GET",
      url: "/apis/external.metrics.k8s.io/v1beta1/namespaces/chat/other_metric",
    });
    assert.equal(other.statusCode, 404);
    const bad = await app.inject({
      method: "GET",
      url: "/apis/external.metrics.k8s.io/v1beta1/namespaces/chat/vibetalk_connections?labelSelector=a%3Db%3Dc",
    });
    assert.equal(bad.statusCode, 400);
  } finally {
    await app.close();
  }
});
