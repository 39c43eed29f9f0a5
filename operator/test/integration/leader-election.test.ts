/**
 * Two operator processes against one control plane: exactly one leads (the Lease names it, /readyz
 * says leader/standby, only it reconciles); when the leader dies without releasing, the standby takes
 * over within the lease duration plus a retry period and reconciles; a graceful stop hands over at once.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startControlPlane, type ControlPlane } from "@vibetalk/testkit";
import { startOperator, type OperatorProcess } from "../support/operator-process.js";
import {
  applyYaml,
  chatClusterYaml,
  conditionOf,
  getJson,
  getOrUndefined,
  installCrd,
  operatorKubeconfig,
  waitFor,
  type ChatClusterJson,
} from "../support/k8s.js";

const LEASE_SECONDS = 4;
const RETRY_SECONDS = 0.5;
const env = {
  LEASE_DURATION_SECONDS: String(LEASE_SECONDS),
  LEASE_RENEW_DEADLINE_SECONDS: "3",
  LEASE_RETRY_PERIOD_SECONDS: String(RETRY_SECONDS),
  EXTERNAL_METRICS_ENABLED: "false",
};

let cp: ControlPlane;
let opKubeconfig: string;
const ops: OperatorProcess[] = [];

async function role(op: OperatorProcess): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${op.metricsPort}/readyz`);
  const body = (await res.json()) as { role?: string };
  return body.role ?? "unknown";
}
const holder = async () =>
  (
    await getJson<{ spec: { holderIdentity?: string } }>(cp, [
      "-n",
      "vibetalk-system",
      "get",
      "lease",
      "vibetalk-operator",
    ])
  ).spec.holderIdentity;

describe("leader election", { timeout: 300_000 }, () => {
  before(async () => {
    cp = await startControlPlane({ nodes: 1 });
    await installCrd(cp);
    opKubeconfig = await operatorKubeconfig(cp);
    for (const id of ["operator-a", "operator-b"]) {
      ops.push(await startOperator({ kubeconfigPath: opKubeconfig, identity: id, env }));
    }
  });
  after(async () => {
    for (const op of ops) await op.stop().catch(() => undefined);
    await cp?.stop();
  });

  test("exactly one of two instances leads", async () => {
    const leaderId = await waitFor("a Lease holder", async () => (await holder()) || undefined);
    await waitFor("roles settle", async () => {
      const roles = await Promise.all(ops.map(role));
      return (
        roles.filter((r) => r === "leader").length === 1 && roles.filter((r) => r === "standby").length === 1
      );
    });
    const leader = ops.find((o) => o.identity === leaderId);
    assert.ok(leader, `holder ${leaderId} is one of ours`);
    assert.equal(await role(leader), "leader");
    const metrics = await (await fetch(`http://127.0.0.1:${leader.metricsPort}/metrics`)).text();
    assert.match(metrics, /^vibetalk_operator_leader 1$/m);
  });

  test("only the leader reconciles", async () => {
    await applyYaml(cp, chatClusterYaml("one", "default", ["replicas: 1", "partitions: 4"]));
    await waitFor(
      "cluster one Ready",
      async () =>
        conditionOf(await getOrUndefined<ChatClusterJson>(cp, ["get", "cc", "one"]), "Ready")?.status ===
        "True",
      60_000,
    );
    const leaderId = await holder();
    for (const op of ops) {
      const text = await (await fetch(`http://127.0.0.1:${op.metricsPort}/metrics`)).text();
      const reconciled = /^vibetalk_operator_reconciles_total\{result="success"\} [1-9]/m.test(text);
      assert.equal(reconciled, op.identity === leaderId, `${op.identity} reconciled: ${reconciled}`);
    }
  });

  test("a killed leader is replaced within the lease duration, and the new leader reconciles", async () => {
    const leaderId = await holder();
    const leader = ops.find((o) => o.identity === leaderId);
    const standby = ops.find((o) => o.identity !== leaderId);
    assert.ok(leader && standby);
    const t0 = Date.now();
    await leader.kill();
    await waitFor(
      "the standby takes the Lease",
      async () => (await holder()) === standby.identity,
      30_000,
      100,
    );
    const failoverMs = Date.now() - t0;
    assert.ok(
      failoverMs <= (LEASE_SECONDS + 2 * RETRY_SECONDS) * 1000 + 1500,
      `failover took ${failoverMs} ms`,
    );
    console.log(`# failover after SIGKILL: ${failoverMs} ms (lease ${LEASE_SECONDS} s)`);
    await waitFor("standby reports leader", async () => (await role(standby)) === "leader");
    await applyYaml(cp, chatClusterYaml("two", "default", ["replicas: 1", "partitions: 4"]));
    await waitFor(
      "cluster two Ready under the new leader",
      async () =>
        conditionOf(await getOrUndefined<ChatClusterJson>(cp, ["get", "cc", "two"]), "Ready")?.status ===
        "True",
      60_000,
    );
    ops.splice(ops.indexOf(leader), 1);
  });

  test("a gracefully stopped leader releases the Lease for a fast handover", async () => {
    const next = await startOperator({ kubeconfigPath: opKubeconfig, identity: "operator-c", env });
    ops.push(next);
    await waitFor("operator-c is standby", async () => (await role(next)) === "standby");
    const leader = ops.find((o) => o.identity !== "operator-c");
    assert.ok(leader);
    const t0 = Date.now();
    await leader.stop();
    ops.splice(ops.indexOf(leader), 1);
    await waitFor("operator-c takes over", async () => (await holder()) === "operator-c", 30_000, 100);
    const ms = Date.now() - t0;
    assert.ok(ms < LEASE_SECONDS * 1000, `handover took ${ms} ms, less than the lease duration`);
  });
});
