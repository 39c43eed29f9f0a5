import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1EnvVar } from "@kubernetes/client-node";
import {
  buildClientService,
  buildDeployment,
  buildHeadlessService,
  buildHpa,
  buildPdb,
  buildReleasesConfigMap,
  buildRole,
  buildRoleBinding,
  buildServiceAccount,
  buildServiceMonitor,
  desiredObjects,
} from "../../src/resources/index.js";
import { specHash } from "../../src/resources/deployment.js";
import { ANNOTATION_SPEC_HASH, podSelector } from "../../src/resources/meta.js";
import { makeCluster } from "../support/fixtures.js";

const owner = {
  apiVersion: "vibetalk.io/v1alpha1",
  kind: "ChatCluster",
  name: "demo",
  uid: "uid-1234",
  controller: true,
  blockOwnerDeletion: true,
};

const envByName = (env: V1EnvVar[] | undefined) => new Map((env ?? []).map((e) => [e.name, e]));

test("every desired object is namespaced, owned by the ChatCluster and carries the common labels", () => {
  const { apply } = desiredObjects(makeCluster({ autoscaling: { enabled: true } }));
  assert.ok(apply.length >= 8);
  for (const obj of apply) {
    assert.equal(obj.metadata?.namespace, "chat", obj.kind);
    assert.deepEqual(obj.metadata?.ownerReferences, [owner], obj.kind);
    const labels = obj.metadata?.labels ?? {};
    assert.equal(labels["app.kubernetes.io/name"], "vibetalk");
    assert.equal(labels["app.kubernetes.io/instance"], "demo");
    assert.equal(labels["app.kubernetes.io/managed-by"], "vibetalk-operator");
    assert.ok(labels["app.kubernetes.io/component"]);
  }
});

test("optional objects are listed for removal when the spec does not want them", () => {
  const off = desiredObjects(makeCluster({ podDisruptionBudget: { enabled: false } }));
  assert.deepEqual(off.remove.map((r) => r.kind).sort(), [
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "ServiceMonitor",
  ]);
  assert.ok(!off.apply.some((o) => o.kind === "HorizontalPodAutoscaler"));
  const on = desiredObjects(
    makeCluster({
      autoscaling: { enabled: true },
      metrics: { serviceMonitor: { enabled: true } },
      networkPolicy: { enabled: true },
    }),
  );
  assert.deepEqual(on.remove, []);
});

function deploymentParts(spec: Parameters<typeof makeCluster>[0]) {
  const d = buildDeployment(makeCluster(spec));
  const pod = d.spec?.template;
  const container = pod?.spec?.containers[0];
  assert.ok(d.spec && pod?.spec && container);
  return { d, spec: d.spec, pod, podSpec: pod.spec, container };
}

test("Deployment: name, replicas, selector matches the pod labels", () => {
  const { d, spec, pod } = deploymentParts({ replicas: 3 });
  assert.equal(d.metadata?.name, "demo");
  assert.equal(spec.replicas, 3);
  assert.deepEqual(spec.selector.matchLabels, {
    "app.kubernetes.io/name": "vibetalk",
    "app.kubernetes.io/instance": "demo",
    "app.kubernetes.io/component": "chat-node",
  });
  for (const [k, v] of Object.entries(spec.selector.matchLabels ?? {}))
    assert.equal(pod.metadata?.labels?.[k], v);
});

test("Deployment rolls one pod at a time whatever the size: a new pod Ready before an old one drains", () => {
  for (const replicas of [2, 10, 40]) {
    const { spec } = deploymentParts({ replicas });
    assert.deepEqual(spec.strategy, {
      type: "RollingUpdate",
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
  }
});

test("Deployment: image, probes on the ops port, ports, grace period = drainSeconds + margin, service account", () => {
  const { podSpec, container } = deploymentParts({ drainSeconds: 40 });
  assert.equal(podSpec.serviceAccountName, "demo-chat-node");
  assert.equal(podSpec.terminationGracePeriodSeconds, 50);
  assert.equal(container.image, "vibetalk/chat-node:1.0.0");
  assert.deepEqual(container.readinessProbe?.httpGet, { path: "/readyz", port: "ops" });
  assert.deepEqual(container.livenessProbe?.httpGet, { path: "/healthz", port: "ops" });
  assert.deepEqual(container.ports, [
    { name: "http", containerPort: 8080, protocol: "TCP" },
    { name: "ops", containerPort: 9090, protocol: "TCP" },
  ]);
});

test("Deployment: the chat-node environment contract", () => {
  const { container } = deploymentParts({ drainSeconds: 40, partitions: 128, userExchanges: 8 });
  const env = envByName(container.env);
  const values = Object.fromEntries(
    [...env].filter(([, e]) => e.value !== undefined).map(([k, e]) => [k, e.value]),
  );
  assert.deepEqual(values, {
    PORT: "8080",
    OPS_PORT: "9090",
    CLUSTER_NAME: "demo",
    PARTITIONS: "128",
    USER_EXCHANGES: "8",
    PARTITION_ASSIGNMENT: "kubernetes",
    PARTITIONS_CONFIGMAP: "demo-partitions",
    RELEASES_CONFIGMAP: "demo-releases",
    DRAIN_SECONDS: "40",
    LARGE_CHANNEL_MEMBERS: "100",
    OFFICIAL_GROUP: "true",
    OFFICIAL_GROUP_NAME: "VibeTalk",
    OFFICIAL_POSTING: "admins",
  });
  const field = (n: string) => env.get(n)?.valueFrom?.fieldRef?.fieldPath;
  assert.equal(field("POD_NAME"), "metadata.name");
  assert.equal(field("POD_NAMESPACE"), "metadata.namespace");
  assert.equal(field("POD_IP"), "status.podIP");
  const secret = (n: string) => env.get(n)?.valueFrom?.secretKeyRef;
  assert.deepEqual(secret("RABBITMQ_URL"), { name: "rabbitmq", key: "url" });
  assert.deepEqual(secret("REDIS_URL"), { name: "redis", key: "url" });
  assert.deepEqual(secret("MONGODB_URL"), { name: "mongodb", key: "url" });
  assert.deepEqual(secret("JWT_SECRET"), { name: "jwt", key: "secret" });
});

test("Deployment leaves replicas to the HPA when autoscaling is on", () => {
  const d = buildDeployment(makeCluster({ autoscaling: { enabled: true }, replicas: 7 }));
  assert.equal(d.spec && "replicas" in d.spec, false);
});

test("Deployment quantities become strings", () => {
  const d = buildDeployment(
    makeCluster({ resources: { limits: { cpu: 1, memory: "512Mi" }, requests: { cpu: "100m" } } }),
  );
  assert.deepEqual(d.spec?.template.spec?.containers[0]?.resources, {
    limits: { cpu: "1", memory: "512Mi" },
    requests: { cpu: "100m" },
  });
});

test("the pod-template spec hash changes with pod-relevant fields only", () => {
  const hash = (spec: Parameters<typeof makeCluster>[0]) =>
    buildDeployment(makeCluster(spec)).spec?.template.metadata?.annotations?.[ANNOTATION_SPEC_HASH];
  const base = hash({});
  assert.match(base ?? "", /^[0-9a-f]{16}$/);
  assert.equal(hash({}), base, "deterministic");
  assert.notEqual(hash({ image: "vibetalk/chat-node:1.0.1" }), base);
  assert.notEqual(hash({ jwtSecretRef: { name: "jwt2" } }), base);
  assert.notEqual(hash({ drainSeconds: 60 }), base);
  assert.equal(hash({ replicas: 9 }), base, "scaling does not roll");
  assert.equal(hash({ autoscaling: { enabled: true } }), base, "autoscaling does not roll");
});

test("client Service: ClientIP affinity, spec type and port, targets the http port", () => {
  const s = buildClientService(makeCluster({ service: { type: "NodePort", port: 3000 } }));
  assert.equal(s.metadata?.name, "demo");
  assert.equal(s.spec?.type, "NodePort");
  assert.equal(s.spec?.sessionAffinity, "ClientIP");
  assert.deepEqual(s.spec?.ports, [{ name: "http", port: 3000, targetPort: "http", protocol: "TCP" }]);
  assert.equal(s.spec?.selector?.["app.kubernetes.io/component"], "chat-node");
});

test("headless Service: clusterIP None, publishes not-ready pods", () => {
  const s = buildHeadlessService(makeCluster());
  assert.equal(s.metadata?.name, "demo-headless");
  assert.equal(s.spec?.clusterIP, "None");
  assert.equal(s.spec?.publishNotReadyAddresses, true);
});

test("RBAC: ServiceAccount, Role with least privilege by resource name, RoleBinding", () => {
  const c = makeCluster();
  assert.equal(buildServiceAccount(c).metadata?.name, "demo-chat-node");
  const role = buildRole(c);
  assert.deepEqual(role.rules, [
    {
      apiGroups: [""],
      resources: ["configmaps"],
      resourceNames: ["demo-partitions", "demo-releases"],
      verbs: ["get", "list", "watch"],
    },
    {
      apiGroups: [""],
      resources: ["configmaps"],
      resourceNames: ["demo-releases"],
      verbs: ["update", "patch"],
    },
    { apiGroups: [""], resources: ["pods"], verbs: ["patch"] },
  ]);
  for (const rule of role.rules ?? []) {
    assert.ok(!rule.verbs.includes("*") && !rule.verbs.includes("create") && !rule.verbs.includes("delete"));
  }
  const rb = buildRoleBinding(c);
  assert.deepEqual(rb.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "Role",
    name: "demo-chat-node",
  });
  assert.deepEqual(rb.subjects, [{ kind: "ServiceAccount", name: "demo-chat-node", namespace: "chat" }]);
});

test("releases ConfigMap is created without data (chat-nodes own its keys)", () => {
  const cm = buildReleasesConfigMap(makeCluster());
  assert.equal(cm.metadata?.name, "demo-releases");
  assert.equal("data" in cm, false);
});

test("HPA: External metric vibetalk_connections selected by cluster, AverageValue target", () => {
  assert.equal(buildHpa(makeCluster()), undefined);
  const hpa = buildHpa(
    makeCluster({
      autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 12, targetConnectionsPerPod: 800 },
    }),
  );
  assert.deepEqual(hpa?.spec?.scaleTargetRef, { apiVersion: "apps/v1", kind: "Deployment", name: "demo" });
  assert.equal(hpa?.spec?.minReplicas, 3);
  assert.equal(hpa?.spec?.maxReplicas, 12);
  assert.deepEqual(hpa?.spec?.metrics, [
    {
      type: "External",
      external: {
        metric: { name: "vibetalk_connections", selector: { matchLabels: { cluster: "demo" } } },
        target: { type: "AverageValue", averageValue: "800" },
      },
    },
  ]);
});

test("PDB: maxUnavailable 1 by default, minAvailable when given, absent when disabled", () => {
  const def = buildPdb(makeCluster());
  assert.equal(def?.spec?.maxUnavailable, 1);
  assert.equal(def?.spec?.minAvailable, undefined);
  assert.equal(def?.spec?.selector?.matchLabels?.["app.kubernetes.io/instance"], "demo");
  const min = buildPdb(makeCluster({ podDisruptionBudget: { minAvailable: "50%" } }));
  assert.equal(min?.spec?.minAvailable, "50%");
  assert.equal(min?.spec?.maxUnavailable, undefined);
  assert.equal(buildPdb(makeCluster({ podDisruptionBudget: { enabled: false } })), undefined);
});

test("ServiceMonitor scrapes the headless Service when enabled", () => {
  assert.equal(buildServiceMonitor(makeCluster()), undefined);
  const sm = buildServiceMonitor(
    makeCluster({
      metrics: { serviceMonitor: { enabled: true, interval: "15s", labels: { release: "prom" } } },
    }),
  );
  assert.equal(sm?.spec.selector.matchLabels["vibetalk.io/service"], "headless");
  assert.deepEqual(sm?.spec.endpoints, [{ port: "ops", path: "/metrics", interval: "15s" }]);
  assert.equal(sm?.metadata?.labels?.release, "prom");
});

test("pod selector string matches the Deployment selector", () => {
  assert.equal(
    podSelector("demo"),
    "app.kubernetes.io/name=vibetalk,app.kubernetes.io/instance=demo,app.kubernetes.io/component=chat-node",
  );
});

test("the official group's settings reach the chat-nodes; its service token only when the spec names one", () => {
  const envOf = (spec: Parameters<typeof makeCluster>[0]) =>
    envByName(buildDeployment(makeCluster(spec)).spec?.template.spec?.containers[0]?.env);
  const plain = envOf({});
  assert.deepEqual(
    ["OFFICIAL_GROUP", "OFFICIAL_GROUP_NAME", "OFFICIAL_POSTING"].map((n) => plain.get(n)?.value),
    ["true", "VibeTalk", "admins"],
  );
  assert.equal(plain.has("OFFICIAL_SERVICE_TOKEN"), false);
  const set = envOf({
    officialGroup: { name: "News", posting: "everyone", serviceTokenRef: { name: "official" } },
  });
  assert.deepEqual(
    ["OFFICIAL_GROUP_NAME", "OFFICIAL_POSTING"].map((n) => set.get(n)?.value),
    ["News", "everyone"],
  );
  assert.deepEqual(set.get("OFFICIAL_SERVICE_TOKEN")?.valueFrom?.secretKeyRef, {
    name: "official",
    key: "token",
  });
  const off = envOf({ officialGroup: { enabled: false } });
  assert.equal(off.get("OFFICIAL_GROUP")?.value, "false");
  assert.equal(off.has("OFFICIAL_GROUP_NAME"), false);
});

test("trusted proxies and the previous JWT secret reach the chat-nodes only when the spec names them", () => {
  const envOf = (spec: Parameters<typeof makeCluster>[0]) =>
    envByName(buildDeployment(makeCluster(spec)).spec?.template.spec?.containers[0]?.env);
  const plain = envOf({});
  assert.equal(plain.has("TRUST_PROXY"), false);
  assert.equal(plain.has("JWT_PREVIOUS_SECRET"), false);
  const set = envOf({
    trustedProxies: ["10.0.0.0/8", "192.168.1.7"],
    jwtPreviousSecretRef: { name: "jwt-old" },
  });
  assert.equal(set.get("TRUST_PROXY")?.value, "10.0.0.0/8,192.168.1.7");
  assert.deepEqual(set.get("JWT_PREVIOUS_SECRET")?.valueFrom?.secretKeyRef, {
    name: "jwt-old",
    key: "previous",
  });
});

test("push settings reach the chat-nodes: the gateway URL, the VAPID keys from their Secret, the interval; none when push is off", () => {
  const envOf = (spec: Parameters<typeof makeCluster>[0]) =>
    envByName(buildDeployment(makeCluster(spec)).spec?.template.spec?.containers[0]?.env);
  const off = envOf({});
  assert.deepEqual(
    [...off.keys()].filter((k) => k.startsWith("PUSH_")),
    [],
  );
  const on = envOf({
    push: {
      gatewayUrl: "https://push.example.test/_matrix/push/v1/notify",
      vapidPublicKeyRef: { name: "vapid" },
      vapidPrivateKeyRef: { name: "vapid" },
      vapidSubject: "mailto:ops@example.test",
      minIntervalSeconds: 30,
    },
  });
  assert.equal(on.get("PUSH_GATEWAY_URL")?.value, "https://push.example.test/_matrix/push/v1/notify");
  assert.deepEqual(on.get("PUSH_VAPID_PUBLIC_KEY")?.valueFrom?.secretKeyRef, {
    name: "vapid",
    key: "publicKey",
  });
  assert.deepEqual(on.get("PUSH_VAPID_PRIVATE_KEY")?.valueFrom?.secretKeyRef, {
    name: "vapid",
    key: "privateKey",
  });
  assert.equal(on.get("PUSH_VAPID_SUBJECT")?.value, "mailto:ops@example.test");
  assert.equal(on.get("PUSH_MIN_INTERVAL_SECONDS")?.value, "30");
  const hash = (spec: Parameters<typeof makeCluster>[0]) => specHash(makeCluster(spec).spec);
  assert.notEqual(
    hash({}),
    hash({ push: { gatewayUrl: "https://push.example.test/notify" } }),
    "a push change rolls the pods",
  );
});
