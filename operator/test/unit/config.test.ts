import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, loadConfig } from "../../src/config.js";

test("defaults", () => {
  const c = loadConfig({ POD_NAME: "op-0" });
  assert.equal(c.identity, "op-0");
  assert.equal(c.watchNamespace, undefined);
  assert.equal(c.metricsPort, 8080);
  assert.equal(c.externalMetricsPort, 6443);
  assert.equal(c.leaderElect, true);
  assert.equal(c.leaseNamespace, "vibetalk-system");
  assert.equal(c.leaseName, "vibetalk-operator");
  assert.deepEqual([c.leaseDurationMs, c.renewDeadlineMs, c.retryPeriodMs], [15000, 10000, 2000]);
  assert.equal(c.externalMetricsClientCa, "auto");
});

test("values from the environment; empty strings mean unset", () => {
  const c = loadConfig({
    WATCH_NAMESPACE: "chat",
    POD_NAMESPACE: "ops",
    LEASE_DURATION_SECONDS: "4",
    LEASE_RENEW_DEADLINE_SECONDS: "3",
    LEASE_RETRY_PERIOD_SECONDS: "0.5",
    LEADER_ELECT: "false",
    METRICS_PORT: "",
  });
  assert.equal(c.watchNamespace, "chat");
  assert.equal(c.leaseNamespace, "ops");
  assert.equal(c.retryPeriodMs, 500);
  assert.equal(c.leaderElect, false);
  assert.equal(c.metricsPort, 8080);
});

test("a bad value names its variable", () => {
  assert.throws(
    () => loadConfig({ METRICS_PORT: "70000" }),
    (e: unknown) => e instanceof ConfigError && /METRICS_PORT/.test(e.message),
  );
  assert.throws(() => loadConfig({ WATCH_NAMESPACE: "Not_A_Namespace" }), /WATCH_NAMESPACE/);
  assert.throws(() => loadConfig({ LEADER_ELECT: "maybe" }), /LEADER_ELECT/);
  assert.throws(
    () => loadConfig({ LEASE_DURATION_SECONDS: "5", LEASE_RENEW_DEADLINE_SECONDS: "10" }),
    /duration > renew deadline > retry period/,
  );
});
