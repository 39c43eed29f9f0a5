/**
 * Least privilege and isolation, as the pure builders render them: pod and container security contexts,
 * default requests and limits, the operations port kept off the client Service, the chat-nodes'
 * NetworkPolicy, the operator's RBAC scoped to what it watches, and the chat-node pod admission policy.
 * What the API server and the node make of them is tested in operator/test/integration/admission.test.ts
 * and e2e/test/security.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { KubernetesObject, V1Deployment, V1PolicyRule } from "@kubernetes/client-node";
import { chatNodePodPolicy, chatNodePodPolicySpec } from "../../src/manifests/admission.js";
import { operatorManifests } from "../../src/manifests/operator-manifests.js";
import { operatorRules } from "../../src/manifests/rbac.js";
import { DEFAULT_CHAT_NODE_RESOURCES } from "../../src/resources/deployment.js";
import {
  buildClientService,
  buildDeployment,
  buildHeadlessService,
  buildNetworkPolicy,
} from "../../src/resources/index.js";
import { makeCluster } from "../support/fixtures.js";
import type { ChatClusterSpecInput } from "../../src/api/v1alpha1.js";

const hardened = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

function checkPod(d: V1Deployment, what: string): void {
  const pod = d.spec?.template.spec;
  assert.ok(pod, what);
  assert.equal(pod.securityContext?.runAsNonRoot, true, `${what}: pod runAsNonRoot`);
  assert.deepEqual(pod.securityContext?.seccompProfile, { type: "RuntimeDefault" }, what);
  assert.equal(pod.volumes, undefined, `${what}: needs no writable volume`);
  for (const c of pod.containers) {
    assert.deepEqual(c.securityContext, hardened, `${what}/${c.name}`);
    assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory, `${what}/${c.name} requests`);
    assert.ok(c.resources.limits?.memory, `${what}/${c.name} memory limit`);
  }
}

test("every pod the operator and the bundle run is hardened and has requests and limits", () => {
  checkPod(buildDeployment(makeCluster()), "chat-node");
  const op = operatorManifests().find((o) => o.kind === "Deployment") as V1Deployment;
  checkPod(op, "operator");
});

test("chat-node resources: defaults only when the spec gives none, the spec's as they are otherwise", () => {
  const none = buildDeployment(makeCluster()).spec?.template.spec?.containers[0]?.resources;
  assert.deepEqual(none, {
    requests: { ...DEFAULT_CHAT_NODE_RESOURCES.requests },
    limits: { ...DEFAULT_CHAT_NODE_RESOURCES.limits },
  });
  const given = buildDeployment(makeCluster({ resources: { requests: { memory: "2Gi" } } })).spec?.template
    .spec?.containers[0]?.resources;
  assert.deepEqual(given, { requests: { memory: "2Gi" } });
});

test("the operations port is on the headless Service only, never on the client Service", () => {
  const c = makeCluster();
  assert.deepEqual(
    buildClientService(c).spec?.ports?.map((p) => p.targetPort),
    ["http"],
  );
  assert.deepEqual(buildHeadlessService(c).spec?.ports, [
    { name: "http", port: 8080, targetPort: "http", protocol: "TCP" },
    { name: "ops", port: 9090, targetPort: "ops", protocol: "TCP" },
  ]);
});

test("NetworkPolicy: absent unless enabled; defaults: clients from anywhere, scrapes from monitoring, egress to the five services", () => {
  assert.equal(buildNetworkPolicy(makeCluster()), undefined);
  const np = buildNetworkPolicy(makeCluster({ networkPolicy: { enabled: true } }));
  assert.ok(np?.spec);
  assert.equal(np.metadata?.name, "demo-chat-node");
  assert.deepEqual(np.spec.podSelector?.matchLabels, {
    "app.kubernetes.io/name": "vibetalk",
    "app.kubernetes.io/instance": "demo",
    "app.kubernetes.io/component": "chat-node",
  });
  assert.deepEqual(np.spec.policyTypes, ["Ingress", "Egress"]);
  assert.deepEqual(np.spec.ingress, [
    { ports: [{ port: 8080, protocol: "TCP" }] },
    {
      ports: [{ port: 9090, protocol: "TCP" }],
      _from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }],
    },
  ]);
  assert.deepEqual(np.spec.egress, [
    { ports: [{ port: 5672, protocol: "TCP" }] },
    { ports: [{ port: 6379, protocol: "TCP" }] },
    { ports: [{ port: 27017, protocol: "TCP" }] },
    {
      ports: [
        { port: 443, protocol: "TCP" },
        { port: 6443, protocol: "TCP" },
      ],
    },
    {
      ports: [
        { port: 53, protocol: "UDP" },
        { port: 53, protocol: "TCP" },
      ],
    },
  ]);
});

test("NetworkPolicy: with push on, egress to the push services on 443 and the gateway's own port; none while it is off", () => {
  const egress = (push: ChatClusterSpecInput["push"], to?: { ipBlock: { cidr: string } }[]) =>
    buildNetworkPolicy(
      makeCluster({
        networkPolicy: { enabled: true, ...(to ? { egress: { push: { to } } } : {}) },
        ...(push ? { push } : {}),
      }),
    )?.spec?.egress ?? [];
  assert.equal(egress({}).length, 5);
  const vapid = {
    vapidPublicKeyRef: { name: "vapid" },
    vapidPrivateKeyRef: { name: "vapid" },
    vapidSubject: "mailto:ops@example.test",
  };
  assert.deepEqual(egress(vapid)[5], { ports: [{ port: 443, protocol: "TCP" }] });
  assert.deepEqual(egress({ gatewayUrl: "http://sygnal.push.svc:5000/_matrix/push/v1/notify" })[5], {
    ports: [{ port: 5000, protocol: "TCP" }],
  });
  const both = egress({ ...vapid, gatewayUrl: "https://push.example.test/notify" }, [
    { ipBlock: { cidr: "192.0.2.0/24" } },
  ]);
  assert.deepEqual(both[5], {
    ports: [{ port: 443, protocol: "TCP" }],
    to: [{ ipBlock: { cidr: "192.0.2.0/24" } }],
  });
  assert.equal(both.length, 6);
});

test("NetworkPolicy: configured peers and ports; an empty metricsFrom admits no scrape at all", () => {
  const rabbit = { podSelector: { matchLabels: { "app.kubernetes.io/name": "rabbitmq" } } };
  const np = buildNetworkPolicy(
    makeCluster({
      networkPolicy: {
        enabled: true,
        clientFrom: [{ namespaceSelector: { matchLabels: { ingress: "yes" } } }],
        metricsFrom: [],
        egress: {
          rabbitmq: { ports: [5671], to: [rabbit] },
          apiServer: { to: [{ ipBlock: { cidr: "10.0.0.1/32" } }] },
        },
      },
    }),
  );
  assert.deepEqual(np?.spec?.ingress, [
    {
      ports: [{ port: 8080, protocol: "TCP" }],
      _from: [{ namespaceSelector: { matchLabels: { ingress: "yes" } } }],
    },
  ]);
  assert.deepEqual(np?.spec?.egress?.[0], { ports: [{ port: 5671, protocol: "TCP" }], to: [rabbit] });
  assert.deepEqual(np?.spec?.egress?.[3]?.to, [{ ipBlock: { cidr: "10.0.0.1/32" } }]);
  assert.equal(np?.spec?.egress?.length, 5);
});

const kinds = (objs: KubernetesObject[]) => objs.map((o) => `${o.kind}/${o.metadata?.namespace ?? ""}`);
const rulesOf = (objs: KubernetesObject[], kind: string) =>
  (
    objs.find((o) => o.kind === kind && o.metadata?.name === "vibetalk-operator") as
      (KubernetesObject & { rules: V1PolicyRule[] }) | undefined
  )?.rules;

test("operator RBAC: cluster-wide when watching all namespaces; a Role in the one watched namespace otherwise, nothing cluster-wide", () => {
  const all = operatorManifests();
  assert.deepEqual(rulesOf(all, "ClusterRole"), operatorRules());
  assert.ok(kinds(all).includes("ClusterRoleBinding/"));

  const one = operatorManifests({ watchNamespace: "chat" });
  assert.equal(rulesOf(one, "ClusterRole"), undefined);
  assert.ok(!one.some((o) => o.kind === "ClusterRoleBinding"));
  assert.deepEqual(rulesOf(one, "Role"), operatorRules());
  const binding = one.find((o) => o.kind === "RoleBinding" && o.metadata?.name === "vibetalk-operator") as
    (KubernetesObject & { roleRef: { kind: string; name: string } }) | undefined;
  assert.equal(binding?.metadata?.namespace, "chat");
  assert.deepEqual(binding?.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "Role",
    name: "vibetalk-operator",
  });
  const env = (one.find((o) => o.kind === "Deployment") as V1Deployment).spec?.template.spec?.containers[0]
    ?.env;
  assert.deepEqual(
    env?.find((e) => e.name === "WATCH_NAMESPACE"),
    { name: "WATCH_NAMESPACE", value: "chat" },
  );
  // Every other RoleBinding is namespaced and grants no cluster-wide rule either.
  for (const o of one.filter((x) => x.kind === "RoleBinding")) assert.ok(o.metadata?.namespace);
});

test("operator rules: nothing cluster-scoped, no wildcard, no escalate/bind/impersonate", () => {
  for (const r of operatorRules()) {
    assert.ok(!r.verbs.some((v) => ["*", "escalate", "bind", "impersonate"].includes(v)), JSON.stringify(r));
    for (const res of r.resources ?? [])
      assert.ok(
        !["*", "namespaces", "nodes", "clusterroles", "clusterrolebindings"].includes(res),
        JSON.stringify(r),
      );
  }
});

test("chat-node pod policy: matches pod UPDATEs by chat-node ServiceAccounts, denies, fails closed", () => {
  const [policy, binding] = chatNodePodPolicy();
  assert.equal(policy?.kind, "ValidatingAdmissionPolicy");
  assert.equal(binding?.kind, "ValidatingAdmissionPolicyBinding");
  const spec = chatNodePodPolicySpec() as {
    failurePolicy: string;
    matchConstraints: { resourceRules: { resources: string[]; operations: string[] }[] };
    matchConditions: { expression: string }[];
    validations: { expression: string }[];
  };
  assert.equal(spec.failurePolicy, "Fail");
  assert.deepEqual(spec.matchConstraints.resourceRules[0]?.resources, ["pods"]);
  assert.deepEqual(spec.matchConstraints.resourceRules[0]?.operations, ["UPDATE"]);
  assert.match(spec.matchConditions[0]?.expression ?? "", /endsWith\('-chat-node'\)/);
  const all = spec.validations.map((v) => v.expression).join("\n");
  for (const part of ["variables.podName", "object.spec == oldObject.spec", "labels", "finalizers"])
    assert.ok(all.includes(part), part);
  assert.deepEqual((binding as unknown as { spec: unknown }).spec, {
    policyName: "vibetalk-chat-node-pods",
    validationActions: ["Deny"],
  });
});
