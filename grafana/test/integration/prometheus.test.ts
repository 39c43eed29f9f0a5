/**
 * The dashboards and alert rules against a real Prometheus: promtool checks and unit-tests the rules,
 * then a Prometheus on a loopback port scrapes the real registries of two chat-nodes and an operator
 * (built by their own createMetrics, fed with observations while the test runs), loads the rules, and
 * evaluates every dashboard query and alert expression through its HTTP API.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ManagedProcess, freePort, run, tempDir, waitFor, waitUntil } from "@vibetalk/testkit";
import { createMetrics as createChatNodeMetrics } from "../../../chat-node/src/metrics.js";
import { createMetrics as createOperatorMetrics } from "../../../operator/src/metrics.js";
import { RULES_FILE } from "../../generate.js";
import {
  alertRules,
  allRules,
  labelValuesQuery,
  loadDashboards,
  substituteVariables,
  variableQuery,
  type Dashboard,
} from "../support/observability.js";

const PROMETHEUS = "/usr/bin/prometheus";
const PROMTOOL = "/usr/bin/promtool";
const RULES_TEST = join(RULES_FILE, "../vibetalk.rules.test.yaml");

/** What the test feeds the registries makes exactly these alert expressions return series. */
const EXPECTED_TO_MATCH = [
  "VibeTalkInternalErrors",
  "VibeTalkOperatorReconcileErrors",
  "VibeTalkPartitionsUnbalanced",
];

interface QueryResponse {
  status: string;
  error?: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe("promtool", () => {
  test("promtool check rules grafana/alerts/vibetalk.rules.yaml", async () => {
    const out = await run(PROMTOOL, ["check", "rules", RULES_FILE]);
    assert.match(out, /SUCCESS: \d+ rules found/);
  });

  test("promtool test rules: each alert fires on the series written for it, and only then", async () => {
    const out = await run(PROMTOOL, ["test", "rules", RULES_TEST]);
    assert.match(out, /SUCCESS/);
  });
});

describe("dashboards and alerts on a real Prometheus", { timeout: 300_000 }, () => {
  const servers: Server[] = [];
  let ticker: NodeJS.Timeout | undefined;
  let prometheus: ManagedProcess | undefined;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let api = "";

  const query = async (expr: string): Promise<QueryResponse> => {
    const res = await fetch(`${api}/api/v1/query?${new URLSearchParams({ query: expr })}`);
    const body = (await res.json()) as QueryResponse;
    assert.equal(body.status, "success", `${expr}: ${body.error ?? res.status}`);
    return body;
  };

  /** Serves a registry's text exposition on its own loopback port. */
  const serve = async (registry: { metrics(): Promise<string>; contentType: string }): Promise<number> => {
    const port = await freePort();
    const server = createServer((_req, res) => {
      registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    return port;
  };

  before(async () => {
    const a = createChatNodeMetrics("chat-a", { defaultMetrics: true });
    const b = createChatNodeMetrics("chat-b", { defaultMetrics: true });
    const op = createOperatorMetrics({ defaultMetrics: true });
    // Unbalanced on purpose (40 vs 24): VibeTalkPartitionsUnbalanced must see it.
    a.ownedPartitions.set(40);
    b.ownedPartitions.set(24);
    for (const [m, connections] of [
      [a, 120],
      [b, 80],
    ] as const) {
      m.connections.set(connections);
      m.connectedUsers.set(connections / 2);
      m.boundUsers.set(connections / 2 + 3);
      m.socketsPerUser.set({ stat: "avg" }, 2);
      m.socketsPerUser.set({ stat: "max" }, 4);
      m.partitionLag.set({ partition: "3" }, 5);
      m.partitionLag.set({ partition: "17" }, 2);
      m.consumerRestarts.inc(0);
    }
    op.queueDepth.set(0);
    op.isLeader.set(1);
    op.assignmentEpoch.set({ cluster: "chat/chat" }, 7);
    op.rebalances.inc({ cluster: "chat/chat" });
    op.partitionsMoved.inc({ cluster: "chat/chat" }, 21);
    for (const resource of ["chatclusters", "deployments", "pods"]) op.informerHealthy.set({ resource }, 1);

    let tick = 0;
    ticker = setInterval(() => {
      tick++;
      for (const m of [a, b]) {
        m.messagesAccepted.inc(20);
        m.messagesStored.inc({ result: "new" }, 20);
        m.messagesStored.inc({ result: "duplicate" }, 1);
        m.messagesDelivered.inc(45);
        for (let i = 0; i < 5; i++) {
          m.sendAck.observe(0.002 + i * 0.001);
          m.sendDeliver.observe(0.015 + i * 0.005);
          m.fanoutPublishes.observe(1 + (i % 3));
        }
        m.batchSize.observe(20);
        m.batchSeconds.observe(0.012);
        m.brokerDeliveries.inc({ kind: "message" }, 40);
        m.brokerDeliveries.inc({ kind: "receipt" }, 3);
        m.receiptFlushes.inc(2);
      }
      b.errors.inc({ code: "RATE_LIMITED" }, 2);
      if (tick % 4 === 0) a.errors.inc({ code: "INTERNAL" }); // 1/s against 160 sends/s: a bug, not an error rate
      op.reconciles.inc({ result: "success" }, 3);
      op.reconcileDuration.observe({ result: "success" }, 0.04);
      op.reconciles.inc({ result: "error" });
      op.reconcileDuration.observe({ result: "error" }, 0.2);
    }, 250);

    const [portA, portB, portOp, promPort] = await Promise.all([
      serve(a.registry),
      serve(b.registry),
      serve(op.registry),
      freePort(),
    ]);
    dir = await tempDir("prometheus");
    const config = {
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      rule_files: [RULES_FILE],
      scrape_configs: [
        {
          job_name: "chat-headless",
          static_configs: [
            { targets: [`127.0.0.1:${portA}`, `127.0.0.1:${portB}`], labels: { namespace: "chat" } },
          ],
        },
        {
          job_name: "vibetalk-operator",
          static_configs: [{ targets: [`127.0.0.1:${portOp}`], labels: { namespace: "vibetalk-system" } }],
        },
      ],
    };
    const configFile = join(dir.path, "prometheus.yml");
    await writeFile(configFile, JSON.stringify(config, null, 2));
    prometheus = new ManagedProcess({
      name: "prometheus",
      command: PROMETHEUS,
      args: [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir.path, "data")}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        "--log.level=warn",
      ],
      logFile: join(dir.path, "prometheus.log"),
    });
    api = `http://127.0.0.1:${promPort}`;
    await waitUntil(
      "prometheus",
      prometheus,
      async () => (await fetch(`${api}/-/ready`)).status === 200,
      30_000,
    );
    // Enough scrapes of every target for rate() and histogram_quantile() over 20 s windows.
    await waitFor(
      "8 scrapes of each target",
      async () => {
        const r = await query("min(count_over_time(up[1m]))");
        return (
          Number(r.data.result[0]?.value[1] ?? 0) >= 8 &&
          (await query("count(up == 1)")).data.result[0]?.value[1] === "3"
        );
      },
      60_000,
      500,
      async () => prometheus?.logTail() ?? "",
    );
  });

  after(async () => {
    clearInterval(ticker);
    await prometheus?.stop();
    for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()));
    await dir?.remove();
  });

  /** Resolves the dashboard's variables as Grafana would: each label_values() query, in order, first value. */
  const resolveVariables = async (d: Dashboard): Promise<Record<string, string>> => {
    const values: Record<string, string> = { __rate_interval: "20s", __interval: "5s", __range: "5m" };
    for (const v of d.templating.list) {
      if (v.type !== "query") continue;
      const lv = labelValuesQuery(variableQuery(v));
      assert.ok(lv, v.name);
      const selector = substituteVariables(lv.selector, values);
      const res = await fetch(
        `${api}/api/v1/label/${lv.label}/values?${new URLSearchParams({ "match[]": selector })}`,
      );
      const body = (await res.json()) as { status: string; data: string[]; error?: string };
      assert.equal(body.status, "success", `${d.uid} variable ${v.name}: ${body.error ?? ""}`);
      assert.ok(
        body.data.length > 0,
        `${d.uid} variable ${v.name}: label_values(${selector}, ${lv.label}) is empty`,
      );
      values[v.name] = [...body.data].sort()[0] ?? "";
    }
    return values;
  };

  test("every dashboard variable and panel query evaluates without error and returns data", async () => {
    const problems: string[] = [];
    for (const { dashboard } of await loadDashboards()) {
      const values = await resolveVariables(dashboard);
      const targets = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ p, t })));
      for (const { p, t } of targets) {
        const where = `${dashboard.uid} "${p.title}" ${t.refId}`;
        const expr = substituteVariables(t.expr, values);
        const r = await query(expr);
        if (r.data.result.length === 0) problems.push(`${where}: no data for ${expr}`);
        const bad = r.data.result.filter((x) => !Number.isFinite(Number(x.value[1])));
        if (bad.length > 0) problems.push(`${where}: ${bad.map((x) => x.value[1]).join(",")} for ${expr}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test("the variables narrow the queries to the chosen namespace, job and chat-node", async () => {
    const chat = (await loadDashboards()).find((d) => d.dashboard.uid === "vibetalk-chat-node")?.dashboard;
    assert.ok(chat);
    const values = await resolveVariables(chat);
    assert.deepEqual([values.namespace, values.job, values.node], ["chat", "chat-headless", "chat-a"]);
    const connections = chat.panels.find((p) => p.title === "Connections")?.targets?.[0]?.expr ?? "";
    const r = await query(substituteVariables(connections, values));
    assert.equal(r.data.result[0]?.value[1], "120", "only chat-a's connections");
    const all = await query(substituteVariables(connections, { ...values, node: ".*" }));
    assert.equal(all.data.result[0]?.value[1], "200", "All = both chat-nodes");
  });

  test("every alert expression evaluates; exactly the alerts the fed data calls for match", async () => {
    const matching: string[] = [];
    for (const rule of await alertRules()) {
      const r = await query(rule.expr);
      if (r.data.result.length > 0) matching.push(rule.alert ?? "");
    }
    assert.deepEqual(matching.sort(), EXPECTED_TO_MATCH);
    const unbalanced = await query(
      (await alertRules()).find((r) => r.alert === "VibeTalkPartitionsUnbalanced")?.expr ?? "",
    );
    assert.deepEqual(
      unbalanced.data.result.map((s) => [s.metric.namespace, s.metric.job, s.value[1]]),
      [["chat", "chat-headless", "16"]],
    );
  });

  test("Prometheus loads the rule file and evaluates every rule healthily; alerts go pending and firing", async () => {
    interface RulesResponse {
      data: {
        groups: {
          name: string;
          rules: { name: string; type: string; health: string; lastError?: string; state?: string }[];
        }[];
      };
    }
    const rules = await waitFor("every rule evaluated", async () => {
      const body = (await (await fetch(`${api}/api/v1/rules`)).json()) as RulesResponse;
      const all = body.data.groups.flatMap((g) => g.rules);
      return all.length > 0 && all.every((r) => r.health !== "unknown") && all;
    });
    assert.equal(rules.length, (await allRules()).length);
    for (const r of rules) assert.equal(r.health, "ok", `${r.name}: ${r.lastError ?? ""}`);
    const states = Object.fromEntries(
      rules.filter((r) => r.type === "alerting" && r.state !== "inactive").map((r) => [r.name, r.state]),
    );
    assert.deepEqual(states, {
      VibeTalkInternalErrors: "firing", // no `for`
      VibeTalkOperatorReconcileErrors: "pending", // for: 15m
      VibeTalkPartitionsUnbalanced: "pending", // for: 15m
    });
  });

  test("the recording rule gives each ChatCluster's connections under cluster=<name>, as an adapter serves them", async () => {
    const r = await waitFor("cluster:vibetalk_connections:sum recorded", async () => {
      const res = await query("cluster:vibetalk_connections:sum");
      return res.data.result.length > 0 && res;
    });
    assert.deepEqual(
      r.data.result.map((x) => [x.metric.namespace, x.metric.cluster, x.value[1]]),
      [["chat", "chat", "200"]],
    );
  });
});
