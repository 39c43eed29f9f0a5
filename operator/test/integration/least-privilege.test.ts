/**
 * Least privilege on a real API server: the chat-node pod admission policy (as manifests/operator.yaml
 * ships it) with ServiceAccount tokens bound to pods, exactly what the kubelet mounts, and the operator
 * confined to the one namespace it watches (the bundle of `gen:manifests --watch-namespace`). The same is
 * checked with the tokens of running pods in e2e/test/security.test.ts.
 */
import assert from "node:assert/strict";
import { request } from "node:https";
import { after, before, describe, test } from "node:test";
import { startControlPlane, type ControlPlane } from "@vibetalk/testkit";
import { chatNodePodPolicy } from "../../src/manifests/admission.js";
import { OPERATOR_NAME, OPERATOR_NAMESPACE } from "../../src/manifests/operator-manifests.js";
import { buildRole, buildRoleBinding, buildServiceAccount } from "../../src/resources/index.js";
import { makeCluster } from "../support/fixtures.js";
import { startOperator, type OperatorProcess } from "../support/operator-process.js";
import {
  applyYaml,
  chatClusterYaml,
  getJson,
  getOrUndefined,
  installCrd,
  operatorKubeconfig,
  waitFor,
} from "../support/k8s.js";

const NS = "chat";
const OTHER = "elsewhere";
let cp: ControlPlane;
let op: OperatorProcess | undefined;

/** kubectl as the bearer of `token`; resolves with the outcome instead of throwing. */
async function as(token: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    return { ok: true, out: await cp.kubectl([`--token=${token}`, ...args]) };
  } catch (err) {
    return { ok: false, out: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * PATCH of a pod with a merge patch, as chat-node's connection reporter sends it (kubectl patch would
 * GET the pod first, which the chat-node Role does not grant).
 */
function patchPod(token: string, name: string, body: string): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${cp.server}/api/v1/namespaces/${NS}/pods/${name}`,
      {
        method: "PATCH",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/merge-patch+json" },
        rejectUnauthorized: false,
      },
      (res) => {
        let out = "";
        res.on("data", (b: Buffer) => (out += b.toString()));
        res.on("end", () => resolve({ ok: res.statusCode === 200, out: `${res.statusCode} ${out}` }));
      },
    );
    req.once("error", reject);
    req.end(body);
  });
}

const merge = (annotations?: Record<string, string>, labels?: Record<string, string>) =>
  JSON.stringify({ metadata: { ...(annotations ? { annotations } : {}), ...(labels ? { labels } : {}) } });

const pod = (
  name: string,
  labels: Record<string, string>,
  annotations: Record<string, string> = {},
  serviceAccountName = "default",
) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: NS, labels, annotations },
  spec: { serviceAccountName, containers: [{ name: "c", image: "localhost/vibetalk/chat-node:0.1.0" }] },
});

async function podToken(sa: string, podName: string): Promise<string> {
  return (
    await cp.kubectl([
      "-n",
      NS,
      "create",
      "token",
      sa,
      "--bound-object-kind=Pod",
      `--bound-object-name=${podName}`,
      "--duration=1h",
    ])
  ).trim();
}

describe("least privilege on a real API server", { timeout: 300_000 }, () => {
  before(async () => {
    cp = await startControlPlane({ nodes: 0 });
    await installCrd(cp);
    await cp.kubectl(["create", "namespace", NS]);
    await cp.kubectl(["create", "namespace", OTHER]);
    const cluster = makeCluster({}, { name: "demo", namespace: NS });
    const items = [
      ...chatNodePodPolicy(),
      buildServiceAccount(cluster),
      buildRole(cluster),
      buildRoleBinding(cluster),
      pod("demo-a", { app: "chat-node" }, { other: "x" }, "demo-chat-node"),
      pod("demo-b", { app: "chat-node" }, {}, "demo-chat-node"),
      pod("rabbitmq-0", { app: "rabbitmq" }),
    ].map((o) => ({ ...o, metadata: { ...o.metadata, ownerReferences: undefined } }));
    await cp.kubectl(["apply", "--server-side", "-f", "-"], {
      input: JSON.stringify({ apiVersion: "v1", kind: "List", items }),
    });
    // Policies take effect once the API server's admission plugin has loaded them.
    await waitFor(
      "the policy to deny a patch of another pod",
      async () => {
        const t = await podToken("demo-chat-node", "demo-a");
        const r = await patchPod(t, "demo-b", merge({ x: "1" }));
        return !r.ok && r.out.includes("ValidatingAdmissionPolicy");
      },
      30_000,
      500,
      async () => {
        const t = await podToken("demo-chat-node", "demo-a");
        const r = await patchPod(t, "demo-b", merge({ x: "1" }));
        const status = await cp.kubectl(["get", "validatingadmissionpolicy", "-o", "yaml"]);
        return `${r.out}\n${status}`;
      },
    );
  });
  after(async () => {
    await op?.stop();
    await cp?.stop();
  });

  test("a chat-node's pod token: its own connections annotation only", async () => {
    const token = await podToken("demo-chat-node", "demo-a");
    const patch = (name: string, body: string) => patchPod(token, name, body);
    const own = await patch("demo-a", merge({ "vibetalk.io/connections": "42" }));
    assert.ok(own.ok, own.out);
    const stored = await getJson<{ metadata: { annotations: Record<string, string> } }>(cp, [
      "-n",
      NS,
      "get",
      "pod",
      "demo-a",
    ]);
    assert.equal(stored.metadata.annotations["vibetalk.io/connections"], "42");
    const readiness = await patch("demo-a", merge({ "vibetalk.io/readiness": "redis,store" }));
    assert.ok(readiness.ok, readiness.out);
    const cleared = await patch("demo-a", merge({ "vibetalk.io/readiness": "" }));
    assert.ok(cleared.ok, cleared.out);
    const cost = await patch(
      "demo-a",
      merge({ "vibetalk.io/connections": "42", "controller.kubernetes.io/pod-deletion-cost": "42" }),
    );
    assert.ok(cost.ok, cost.out);

    const denied: [string, Promise<{ ok: boolean; out: string }>, RegExp][] = [
      [
        "another chat-node pod",
        patch("demo-b", merge({ "vibetalk.io/connections": "1" })),
        /may patch only its own pod demo-a, not demo-b/,
      ],
      [
        "a backing-service pod",
        patch("rabbitmq-0", merge({ "vibetalk.io/connections": "1" })),
        /only its own pod/,
      ],
      ["its own labels", patch("demo-a", merge(undefined, { app: "rabbitmq" })), /nothing of its pod but/],
      ["another annotation", patch("demo-a", merge({ "vibetalk.io/owner": "me" })), /no annotation/],
      [
        "removing an annotation",
        patch("demo-a", JSON.stringify({ metadata: { annotations: { other: null } } })),
        /no annotation/,
      ],
      [
        "a count that is no number",
        patch("demo-a", merge({ "vibetalk.io/connections": "9e9" })),
        /decimal count/,
      ],
      [
        "a readiness value that names no check",
        patch("demo-a", merge({ "vibetalk.io/readiness": "redis;rm -rf" })),
        /must list failing checks/,
      ],
      [
        "a negative deletion cost",
        patch("demo-a", merge({ "controller.kubernetes.io/pod-deletion-cost": "-2147483648" })),
        /must be a connection count/,
      ],
      [
        "its spec",
        patch("demo-a", JSON.stringify({ spec: { activeDeadlineSeconds: 5 } })),
        /nothing of its pod but/,
      ],
      [
        "its finalizers",
        patch("demo-a", JSON.stringify({ metadata: { finalizers: ["x.io/hold"] } })),
        /nothing of its pod but/,
      ],
    ];
    for (const [what, attempt, why] of denied) {
      const r = await attempt;
      assert.equal(r.ok, false, `${what} must be denied`);
      assert.match(r.out, /ValidatingAdmissionPolicy 'vibetalk-chat-node-pods'/, what);
      assert.match(r.out, why, what);
    }
    // The connection count and nothing else changed.
    const after = await getJson<{
      metadata: { labels: Record<string, string>; annotations: Record<string, string> };
    }>(cp, ["-n", NS, "get", "pod", "demo-a"]);
    assert.deepEqual(after.metadata.labels, { app: "chat-node" });
    assert.deepEqual(after.metadata.annotations, {
      other: "x",
      "vibetalk.io/connections": "42",
      "vibetalk.io/readiness": "",
      "controller.kubernetes.io/pod-deletion-cost": "42",
    });
  });

  test("a chat-node token not bound to a pod may patch no pod at all", async () => {
    const token = (await cp.kubectl(["-n", NS, "create", "token", "demo-chat-node", "--duration=1h"])).trim();
    const r = await patchPod(token, "demo-a", merge({ "vibetalk.io/connections": "1" }));
    assert.equal(r.ok, false);
    assert.match(r.out, /only with the token of its own pod/);
  });

  test("the policy leaves everyone else alone (here: the admin relabels a pod)", async () => {
    await cp.kubectl(["-n", NS, "label", "pod", "demo-b", "checked=yes"]);
  });

  test("an operator watching one namespace reconciles there and can read nothing elsewhere", async () => {
    const kubeconfigPath = await operatorKubeconfig(cp, { watchNamespace: NS });
    op = await startOperator({ kubeconfigPath, identity: "operator-ns", env: { WATCH_NAMESPACE: NS } });
    await cp.kubectl(["-n", OTHER, "create", "secret", "generic", "private", "--from-literal=k=v"]);
    await applyYaml(cp, chatClusterYaml("demo", NS, ["networkPolicy: {enabled: true}"]));
    for (const [kind, name] of [
      ["deployment", "demo"],
      ["role", "demo-chat-node"],
      ["networkpolicy", "demo-chat-node"],
      ["service", "demo-headless"],
    ] as const) {
      await waitFor(`${kind}/${name}`, () => getOrUndefined(cp, ["-n", NS, "get", kind, name]), 60_000);
    }
    assert.doesNotMatch(op.logs(), /forbidden/i, "no request of the operator was refused");

    const token = (
      await cp.kubectl(["-n", OPERATOR_NAMESPACE, "create", "token", OPERATOR_NAME, "--duration=1h"])
    ).trim();
    const elsewhere = await as(token, ["-n", OTHER, "get", "secret", "private"]);
    assert.equal(elsewhere.ok, false);
    assert.match(elsewhere.out, /forbidden/i);
    // `kubectl auth can-i` exits 0 for yes and 1 for no.
    for (const args of [
      ["get", "secrets", "-n", OTHER],
      ["patch", "pods", "-n", OTHER],
      ["create", "roles", "-n", OTHER],
      ["list", "chatclusters.vibetalk.io", "--all-namespaces"],
      ["get", "secrets", "--all-namespaces"],
    ]) {
      const r = await as(token, ["auth", "can-i", "--quiet", ...args]);
      assert.equal(r.ok, false, `the operator may not ${args.join(" ")}`);
    }
    const inWatched = await as(token, ["auth", "can-i", "--quiet", "get", "secrets", "-n", NS]);
    assert.equal(inWatched.ok, true, inWatched.out);
  });
});
