/**
 * Dashboards and alert rules as data: well-formed, every query names only metrics chat-node and the
 * operator really export (read from their registries), every alert documented, and the generated
 * Kubernetes objects up to date.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadAll } from "js-yaml";
import { DASHBOARD_CONFIGMAPS, generatedFiles } from "../../generate.js";
import {
  alertRules,
  allRules,
  dashboardQueries,
  exportedMetricNames,
  labelValuesQuery,
  loadDashboards,
  metricNames,
  variableQuery,
  type Dashboard,
} from "../support/observability.js";

const OBSERVABILITY_DOC = fileURLToPath(new URL("../../../docs/observability.md", import.meta.url));

const dashboards = await loadDashboards();
const exported = await exportedMetricNames();

test("there are the chat-node and operator dashboards, with unique uids", () => {
  assert.deepEqual(dashboards.map((d) => d.dashboard.uid).sort(), [
    "vibetalk-chat-node",
    "vibetalk-operator",
  ]);
});

for (const { name, dashboard } of dashboards) {
  test(`${name}: unique panel ids, every panel has a query, a title and a place on the grid`, () => {
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `duplicate panel ids in ${ids.join(",")}`);
    for (const p of dashboard.panels) {
      const where = `panel ${p.id} "${p.title}"`;
      assert.ok(p.title && p.description, `${where} has a title and a description`);
      assert.ok(p.targets && p.targets.length > 0, `${where} has a query`);
      const refIds = p.targets.map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${where}: unique refIds`);
      for (const t of p.targets) assert.ok(t.expr.trim(), `${where} ${t.refId}: empty expr`);
      assert.equal(p.datasource?.uid, "${datasource}", `${where} uses the datasource variable`);
      const { x, w } = p.gridPos;
      assert.ok(x >= 0 && w > 0 && x + w <= 24, `${where} fits the 24-column grid`);
    }
  });

  test(`${name}: variables are the datasource and label_values() queries; every $variable used is defined`, () => {
    const defined = new Set(dashboard.templating.list.map((v) => v.name));
    assert.ok(defined.has("datasource"));
    for (const v of dashboard.templating.list.filter((x) => x.type === "query"))
      assert.ok(labelValuesQuery(variableQuery(v)), `variable ${v.name}: label_values(selector, label)`);
    const builtin = new Set(["__rate_interval", "__interval", "__range"]);
    for (const { where, expr } of dashboardQueries(dashboard)) {
      for (const m of expr.matchAll(/\$\{?([a-zA-Z_][a-zA-Z0-9_]*)/g)) {
        const v = m[1] ?? "";
        assert.ok(builtin.has(v) || defined.has(v), `${where}: $${v} is not a variable of the dashboard`);
      }
    }
  });

  test(`${name}: every metric in every query is one chat-node or the operator exports`, () => {
    checkMetrics(dashboard);
  });
}

function checkMetrics(d: Dashboard): void {
  for (const { where, expr } of dashboardQueries(d)) {
    const names = metricNames(expr);
    assert.ok(names.length > 0, `${where}: no metric in ${expr}`);
    for (const n of names) assert.ok(exported.has(n), `${where}: ${n} is not exported (${expr})`);
  }
}

test("the panels cover what operators need to see", () => {
  const exprs = (uid: string) =>
    dashboards
      .find((d) => d.dashboard.uid === uid)
      ?.dashboard.panels.flatMap((p) => p.targets ?? [])
      .map((t) => t.expr)
      .join("\n") ?? "";
  const chat = exprs("vibetalk-chat-node");
  for (const m of [
    "vibetalk_connections",
    "vibetalk_messages_accepted_total",
    "vibetalk_messages_stored_total",
    "vibetalk_messages_delivered_total",
    "vibetalk_send_ack_seconds_bucket",
    "vibetalk_send_deliver_seconds_bucket",
    "vibetalk_partition_lag",
    "vibetalk_owned_partitions",
    "vibetalk_errors_total",
    "vibetalk_fanout_publishes_per_message_sum",
  ])
    assert.ok(metricNames(chat).includes(m), `chat-node dashboard shows ${m}`);
  const op = exprs("vibetalk-operator");
  for (const m of [
    "vibetalk_operator_reconciles_total",
    "vibetalk_operator_reconcile_duration_seconds_bucket",
    "vibetalk_operator_queue_depth",
    "vibetalk_operator_rebalances_total",
    "vibetalk_operator_partitions_moved_total",
    "vibetalk_operator_assignment_epoch",
  ])
    assert.ok(metricNames(op).includes(m), `operator dashboard shows ${m}`);
});

test("alert rules: named, with a severity, a summary, a description and a runbook section in docs/observability.md", async () => {
  const rules = await alertRules();
  const doc = (await readFile(OBSERVABILITY_DOC, "utf8").catch(() => "")).toLowerCase();
  const names = rules.map((r) => r.alert ?? "");
  assert.equal(new Set(names).size, names.length, "unique alert names");
  for (const r of rules) {
    assert.ok(["warning", "critical"].includes(r.labels?.severity ?? ""), `${r.alert}: severity`);
    assert.ok(r.annotations?.summary && r.annotations.description, `${r.alert}: summary and description`);
    const anchor = r.alert.toLowerCase();
    assert.equal(r.annotations.runbook, `docs/observability.md#${anchor}`, `${r.alert}: runbook`);
    assert.ok(doc.includes(`### ${anchor}`), `docs/observability.md has a "### ${r.alert}" section`);
  }
});

test("rules: every metric in every expression is one chat-node or the operator exports", async () => {
  for (const r of await allRules()) {
    const name = r.alert ?? r.record ?? "";
    assert.ok(name, `a rule is an alert or a record: ${r.expr}`);
    const names = metricNames(r.expr);
    assert.ok(names.length > 0, `${name}: no metric`);
    for (const n of names) assert.ok(exported.has(n), `${name}: ${n} is not exported`);
  }
});

test("recording rules are named level:metric:operation and documented", async () => {
  const doc = await readFile(OBSERVABILITY_DOC, "utf8").catch(() => "");
  for (const r of (await allRules()).filter((x) => x.record)) {
    assert.match(r.record ?? "", /^[a-z_]+:[a-z_]+:[a-z_]+$/);
    assert.ok(doc.includes(`\`${r.record ?? ""}\``), `docs/observability.md explains ${r.record ?? ""}`);
  }
});

test("metricNames reads PromQL: functions, grouping, matchers, ranges, keywords and variables are not metrics", () => {
  assert.deepEqual(
    metricNames(
      'histogram_quantile(0.99, sum by (le) (rate(a_bucket{code=~"x|y", n="$node"}[$__rate_interval]))) > 0.5',
    ),
    ["a_bucket"],
  );
  assert.deepEqual(metricNames("sum(x) by (le) / on(job) group_left(node) y offset 5m"), ["x", "y"]);
  assert.deepEqual(metricNames("count(z == 0) or vector(0) unless w[1h:5m]"), ["z", "w"]);
  assert.deepEqual(metricNames("max_over_time(q[1h]) and deriv(r[10m]) > 1e3"), ["q", "r"]);
});

test("grafana/kubernetes/ is what grafana/generate.ts makes (npx tsx grafana/generate.ts)", async () => {
  for (const [path, text] of await generatedFiles()) assert.equal(await readFile(path, "utf8"), text, path);
});

test('each dashboard ships as a ConfigMap labelled grafana_dashboard: "1" holding its JSON', async () => {
  const docs = loadAll(await readFile(DASHBOARD_CONFIGMAPS, "utf8")) as {
    kind: string;
    metadata: { name: string; labels: Record<string, string> };
    data: Record<string, string>;
  }[];
  assert.equal(docs.length, dashboards.length);
  for (const { name, dashboard } of dashboards) {
    const cm = docs.find((d) => d.data[name] !== undefined);
    assert.ok(cm, name);
    assert.equal(cm.kind, "ConfigMap");
    assert.equal(cm.metadata.labels.grafana_dashboard, "1");
    assert.deepEqual(JSON.parse(cm.data[name] ?? ""), dashboard);
  }
});
