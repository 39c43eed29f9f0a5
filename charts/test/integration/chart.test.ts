/**
 * The vibetalk chart with the real helm: lint, render (operator objects against manifests/operator.yaml so
 * the two install paths cannot drift, the values that switch things, the Secret the ChatCluster and the
 * bitnami charts share), then install, upgrade and uninstall on a real control plane.
 *
 * A copy of the chart without its `dependencies` block is rendered (support/chart.ts says why).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startControlPlane, waitFor, type ControlPlane } from "@vibetalk/testkit";
import { applyDefaults } from "../../../operator/src/api/schema.js";
import {
  chatClusterSpecSchema,
  type ChatCluster,
  type ChatClusterSpec,
} from "../../../operator/src/api/v1alpha1.js";
import { validateCluster } from "../../../operator/src/controller/validate.js";
import {
  EXTERNAL_SERVICES,
  OPERATOR_MANIFESTS,
  readYamlDocs,
  renderableChart,
  type K8sObject,
  type Values,
} from "../support/chart.js";

interface Container {
  name: string;
  image: string;
  imagePullPolicy?: string;
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: { name: string; containerPort: number }[];
  resources?: unknown;
  readinessProbe?: unknown;
  livenessProbe?: unknown;
  securityContext?: unknown;
}
interface PodSpec {
  serviceAccountName: string;
  securityContext?: unknown;
  containers: Container[];
  nodeSelector?: Record<string, string>;
}
interface Deployment extends K8sObject {
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}
interface Secret extends K8sObject {
  data: Record<string, string>;
}
interface ChatClusterObject extends K8sObject {
  spec: Record<string, unknown> & {
    rabbitmq: { secretRef: { name: string; key: string } };
    redis: { secretRef: { name: string; key: string } };
    mongodb: { secretRef: { name: string; key: string } };
    jwtSecretRef: { name: string; key: string };
  };
}

const find = <T extends K8sObject>(docs: K8sObject[], kind: string, name?: string): T | undefined =>
  docs.find((d) => d.kind === kind && (name === undefined || d.metadata.name === name)) as T | undefined;
const must = <T extends K8sObject>(docs: K8sObject[], kind: string, name?: string): T => {
  const d = find<T>(docs, kind, name);
  assert.ok(d, `rendered ${kind}${name ? `/${name}` : ""}`);
  return d;
};
const field = (o: K8sObject, key: string): unknown => o[key];
const decode = (s: Secret): Record<string, string> =>
  Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
const container = (d: Deployment): Container => {
  const c = d.spec.template.spec.containers[0];
  assert.ok(c);
  return c;
};
const envOf = (d: Deployment): Map<string, string | undefined> =>
  new Map((container(d).env ?? []).map((e) => [e.name, e.value]));

let chart: Awaited<ReturnType<typeof renderableChart>>;
let manifests: K8sObject[];

describe("the vibetalk chart, rendered by helm", { timeout: 300_000 }, () => {
  before(async () => {
    chart = await renderableChart();
    manifests = await readYamlDocs(OPERATOR_MANIFESTS);
  });
  after(async () => {
    await chart?.remove();
  });

  test("helm lint --strict passes, with defaults and with every dependency switched off", async () => {
    await chart.helm(["lint", "--strict", chart.dir]);
    const file = await chart.writeValues(EXTERNAL_SERVICES);
    await chart.helm(["lint", "--strict", chart.dir, "-f", file]);
  });

  test("the operator objects are those of manifests/operator.yaml: kinds, names, RBAC rules, pod and APIService", async () => {
    // Release vibetalk in vibetalk-system: the names the bundle uses.
    const docs = await chart.template();
    const operatorDocs = docs.filter(
      (d) => d.metadata.labels?.["app.kubernetes.io/component"] === "operator",
    );
    const id = (d: K8sObject) => `${d.kind}/${d.metadata.namespace ?? ""}/${d.metadata.name}`;
    const expected = manifests.filter((d) => d.kind !== "Namespace"); // helm installs into the release namespace
    assert.deepEqual(operatorDocs.map(id).sort(), expected.map(id).sort());
    for (const m of expected) {
      const r = must(operatorDocs, m.kind, m.metadata.name);
      assert.equal(r.apiVersion, m.apiVersion, id(m));
      for (const key of ["rules", "roleRef", "subjects"])
        assert.deepEqual(field(r, key), field(m, key), `${id(m)} ${key}`);
    }
    // The admission policy and its binding, word for word; the operator's NetworkPolicy but for the
    // release's selector labels.
    for (const kind of ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"])
      assert.deepEqual(field(must(docs, kind), "spec"), field(must(manifests, kind), "spec"), kind);
    const np = (d: K8sObject) => {
      const spec = structuredClone(field(d, "spec")) as { podSelector: unknown };
      spec.podSelector = {};
      return spec;
    };
    assert.deepEqual(np(must(docs, "NetworkPolicy")), np(must(manifests, "NetworkPolicy")));
    const want = must<Deployment>(manifests, "Deployment");
    const got = must<Deployment>(docs, "Deployment", want.metadata.name);
    assert.equal(got.spec.replicas, want.spec.replicas);
    assert.equal(got.spec.template.spec.serviceAccountName, want.spec.template.spec.serviceAccountName);
    assert.deepEqual(got.spec.template.spec.securityContext, want.spec.template.spec.securityContext);
    const [g, w] = [container(got), container(want)];
    assert.equal(g.image, w.image);
    assert.equal(g.imagePullPolicy, w.imagePullPolicy);
    for (const key of ["ports", "readinessProbe", "livenessProbe", "resources", "securityContext"] as const)
      assert.deepEqual(g[key], w[key], `container ${key}`);
    for (const e of w.env ?? [])
      assert.deepEqual(
        (g.env ?? []).find((x) => x.name === e.name),
        e,
        `env ${e.name}`,
      );
    for (const [k, v] of Object.entries(got.spec.selector.matchLabels))
      assert.equal(got.spec.template.metadata.labels[k], v, `pod label ${k}`);
    const svc = must(docs, "Service", "vibetalk-operator");
    const wantSvc = must(manifests, "Service");
    assert.deepEqual(
      (field(svc, "spec") as { ports: unknown }).ports,
      (field(wantSvc, "spec") as { ports: unknown }).ports,
    );
    assert.deepEqual(
      (field(svc, "spec") as { selector: unknown }).selector,
      got.spec.selector.matchLabels,
      "the Service selects the operator pods",
    );
    assert.deepEqual(field(must(docs, "APIService"), "spec"), field(must(manifests, "APIService"), "spec"));
  });

  test("operator.watchNamespace: the operator's rules become a Role and RoleBinding there, as the generator's --watch-namespace bundle has them", async () => {
    const { operatorManifests } = await import("../../../operator/src/manifests/operator-manifests.js");
    const want = operatorManifests({ watchNamespace: "chat" }) as unknown as K8sObject[];
    const docs = await chart.template({ operator: { watchNamespace: "chat" } });
    assert.equal(find(docs, "ClusterRole"), undefined, "nothing cluster-wide");
    assert.equal(find(docs, "ClusterRoleBinding"), undefined, "nothing cluster-wide");
    for (const kind of ["Role", "RoleBinding"]) {
      const got = must(docs, kind, "vibetalk-operator");
      const w = must(want, kind, "vibetalk-operator");
      assert.equal(got.metadata.namespace, "chat", kind);
      for (const key of ["rules", "roleRef", "subjects"])
        assert.deepEqual(field(got, key), field(w, key), `${kind} ${key}`);
    }
  });

  test("network policies: the operator's configurable, the ChatCluster's on by default; the pod policy can be left out", async () => {
    const cc = must<ChatClusterObject>(await chart.template(), "ChatCluster");
    assert.deepEqual(cc.spec.networkPolicy, { enabled: true });
    const docs = await chart.template({
      operator: {
        networkPolicy: {
          metricsFrom: [],
          egress: { apiServer: { ports: [6443], to: [{ ipBlock: { cidr: "10.0.0.1/32" } }] } },
        },
      },
      externalMetrics: { enabled: false },
      chatNodePodPolicy: { enabled: false },
    });
    const spec = field(must(docs, "NetworkPolicy"), "spec") as { ingress: unknown; egress: unknown[] };
    assert.deepEqual(spec.ingress, [], "no ingress rule: nothing may connect");
    assert.deepEqual(spec.egress[0], {
      ports: [{ port: 6443, protocol: "TCP" }],
      to: [{ ipBlock: { cidr: "10.0.0.1/32" } }],
    });
    assert.equal(find(docs, "ValidatingAdmissionPolicy"), undefined);
    const off = await chart.template({ operator: { networkPolicy: { enabled: false } } });
    assert.equal(find(off, "NetworkPolicy"), undefined);
  });

  test("values: operator image, replicas, resources, scheduling, environment, ServiceMonitor", async () => {
    const resources = { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "256Mi" } };
    const docs = await chart.template({
      operator: {
        image: { repository: "acme/vibetalk-operator", tag: "1.2.3" },
        replicas: 3,
        resources,
        nodeSelector: { pool: "system" },
        watchNamespace: "chat",
        extraEnv: [{ name: "WORKERS", value: "8" }],
        podAnnotations: { "example.com/scrape": "true" },
        serviceMonitor: { enabled: true, interval: "15s", labels: { release: "kps" } },
      },
    });
    const d = must<Deployment>(docs, "Deployment");
    assert.equal(container(d).image, "localhost/acme/vibetalk-operator:1.2.3", "under image.registry");
    assert.equal(d.spec.replicas, 3);
    assert.deepEqual(container(d).resources, resources);
    assert.deepEqual(d.spec.template.spec.nodeSelector, { pool: "system" });
    assert.equal(envOf(d).get("WATCH_NAMESPACE"), "chat");
    assert.equal(envOf(d).get("WORKERS"), "8");
    const sm = must(docs, "ServiceMonitor", "vibetalk-operator");
    assert.equal(sm.metadata.labels?.release, "kps");
    const smSpec = field(sm, "spec") as {
      selector: { matchLabels: Record<string, string> };
      endpoints: { port: string; interval: string }[];
    };
    assert.deepEqual(smSpec.selector.matchLabels, d.spec.selector.matchLabels);
    assert.deepEqual(
      smSpec.endpoints.map((e) => [e.port, e.interval]),
      [["http", "15s"]],
    );
    assert.equal(find(await chart.template(), "ServiceMonitor"), undefined, "off by default");
  });

  test("image values: image.registry prefixes both VibeTalk images, tags default to appVersion, chatCluster.spec.image wins", async () => {
    /** The operator's image and the ChatCluster's spec.image. */
    const images = async (values: Values): Promise<[string, unknown]> => {
      const docs = await chart.template(values);
      return [
        container(must<Deployment>(docs, "Deployment")).image,
        must<ChatClusterObject>(docs, "ChatCluster").spec.image,
      ];
    };
    assert.deepEqual(await images({}), [
      "localhost/vibetalk/operator:0.1.0",
      "localhost/vibetalk/chat-node:0.1.0",
    ]);
    assert.deepEqual(
      await images({
        image: { registry: "your-registry:5000/team/" },
        chatCluster: { image: { tag: "0.1.0-rc.1" } },
      }),
      [
        "your-registry:5000/team/vibetalk/operator:0.1.0",
        "your-registry:5000/team/vibetalk/chat-node:0.1.0-rc.1",
      ],
      "a trailing / is dropped",
    );
    assert.deepEqual(
      await images({ image: { registry: "" }, chatCluster: { image: { repository: "acme/chat" } } }),
      ["vibetalk/operator:0.1.0", "acme/chat:0.1.0"],
      "no registry: the bare repositories",
    );
    const pinned = `elsewhere/chat-node@sha256:${"0".repeat(64)}`;
    const [, image] = await images({ chatCluster: { spec: { image: pinned } } });
    assert.equal(image, pinned, "a whole reference, as given");
  });

  test("externalMetrics.enabled=false leaves out the APIService, the https port and the auth-reader binding", async () => {
    const docs = await chart.template({ externalMetrics: { enabled: false } });
    assert.equal(find(docs, "APIService"), undefined);
    assert.equal(find(docs, "RoleBinding", "vibetalk-operator-auth-reader"), undefined);
    const d = must<Deployment>(docs, "Deployment");
    assert.equal(envOf(d).get("EXTERNAL_METRICS_ENABLED"), "false");
    assert.deepEqual(
      container(d).ports?.map((p) => p.name),
      ["http"],
    );
    const ports = (field(must(docs, "Service"), "spec") as { ports: { name: string }[] }).ports;
    assert.deepEqual(
      ports.map((p) => p.name),
      ["http"],
    );
    assert.equal(
      envOf(must<Deployment>(await chart.template(), "Deployment")).get("EXTERNAL_METRICS_ENABLED"),
      "true",
    );
  });

  test("bundled services: the ChatCluster's Secret names the bitnami Services and holds the passwords they read", async () => {
    const values: Values = {
      rabbitmq: { auth: { password: "rabbit-pw" } },
      mongodb: { auth: { passwords: ["mongo-pw"] } },
    };
    const docs = await chart.template(values, { release: "prod", namespace: "apps" });
    const secret = must<Secret>(docs, "Secret");
    // The name the bitnami charts compute from values.yaml's "{{ .Release.Name }}-backends".
    assert.equal(secret.metadata.name, "prod-backends");
    assert.equal(secret.metadata.annotations?.["helm.sh/resource-policy"], "keep");
    const data = decode(secret);
    assert.equal(data["rabbitmq-url"], "amqp://vibetalk:rabbit-pw@prod-rabbitmq.apps.svc.cluster.local:5672");
    assert.equal(data["rabbitmq-password"], "rabbit-pw");
    assert.equal(
      data["mongodb-url"],
      "mongodb://vibetalk:mongo-pw@prod-mongodb.apps.svc.cluster.local:27017/vibetalk",
    );
    assert.equal(data["mongodb-passwords"], "mongo-pw");
    const redisPassword = data["redis-password"] ?? "";
    assert.match(redisPassword, /^[A-Za-z0-9]{32}$/, "generated when not given");
    assert.equal(
      data["redis-url"],
      `redis://:${redisPassword}@prod-redis-master.apps.svc.cluster.local:6379`,
    );
    for (const key of ["rabbitmq-erlang-cookie", "mongodb-root-password", "jwt-secret"])
      assert.match(data[key] ?? "", /^[A-Za-z0-9]{32}$/, key);
    const cc = must<ChatClusterObject>(docs, "ChatCluster", "chat");
    assert.equal(cc.metadata.namespace, "apps");
    for (const ref of [
      cc.spec.rabbitmq.secretRef,
      cc.spec.redis.secretRef,
      cc.spec.mongodb.secretRef,
      cc.spec.jwtSecretRef,
    ]) {
      assert.equal(ref.name, "prod-backends");
      assert.ok(ref.key in data, ref.key);
    }
  });

  test("bundled services follow the subcharts' naming: release names containing the chart, fullnameOverride, ports", async () => {
    const docs = await chart.template(
      {
        rabbitmq: { fullnameOverride: "mq", service: { ports: { amqp: 5673 } } },
        redis: { auth: { enabled: false } },
        mongodb: { service: { nameOverride: "store" } },
        clusterDomain: "corp.local",
      },
      { release: "redis-and-friends", namespace: "chat" },
    );
    const data = decode(must<Secret>(docs, "Secret"));
    assert.match(data["rabbitmq-url"] ?? "", /@mq\.chat\.svc\.corp\.local:5673$/);
    assert.equal(data["redis-url"], "redis://redis-and-friends-master.chat.svc.corp.local:6379");
    assert.equal(data["redis-password"], undefined);
    assert.match(data["mongodb-url"] ?? "", /@store\.chat\.svc\.corp\.local:27017\/vibetalk$/);
  });

  test("external services: dependencies off, the Secret holds the given URLs and a JWT secret only", async () => {
    const docs = await chart.template(EXTERNAL_SERVICES);
    const data = decode(must<Secret>(docs, "Secret"));
    assert.deepEqual(Object.keys(data).sort(), ["jwt-secret", "mongodb-url", "rabbitmq-url", "redis-url"]);
    const external = (EXTERNAL_SERVICES.chatCluster as { external: Record<string, string> }).external;
    assert.equal(data["rabbitmq-url"], external.rabbitmqUrl);
    assert.equal(data["redis-url"], external.redisUrl);
    assert.equal(data["mongodb-url"], external.mongodbUrl);

    const missing = await chart.helm.attempt([
      "template",
      "x",
      chart.dir,
      "--kube-version",
      "1.34.4",
      "--set",
      "rabbitmq.enabled=false",
    ]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /chatCluster\.external\.rabbitmqUrl/);
  });

  test("the rendered ChatCluster passes the operator's own validation", async () => {
    for (const values of [{}, EXTERNAL_SERVICES]) {
      const cc = must<ChatClusterObject>(await chart.template(values), "ChatCluster");
      const cluster: ChatCluster = {
        apiVersion: "vibetalk.io/v1alpha1",
        kind: "ChatCluster",
        metadata: { name: cc.metadata.name, namespace: cc.metadata.namespace ?? "", uid: "u" },
        spec: applyDefaults(chatClusterSpecSchema.json, cc.spec) as ChatClusterSpec,
      };
      assert.deepEqual(validateCluster(cluster, undefined), []);
    }
  });

  test("chatCluster.existingSecret: no Secret rendered, refs point at it; refused with bundled services", async () => {
    const values = { ...EXTERNAL_SERVICES, chatCluster: { existingSecret: "my-backends" } };
    const docs = await chart.template(values);
    assert.equal(find(docs, "Secret"), undefined);
    assert.equal(must<ChatClusterObject>(docs, "ChatCluster").spec.redis.secretRef.name, "my-backends");
    const file = await chart.writeValues({ chatCluster: { existingSecret: "my-backends" } });
    const r = await chart.helm.attempt(["template", "x", chart.dir, "--kube-version", "1.34.4", "-f", file]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /existingSecret is for external services/);
  });

  test("operator only: chatCluster and dependencies off render the operator and nothing else", async () => {
    const docs = await chart.template({ ...EXTERNAL_SERVICES, chatCluster: { enabled: false } });
    assert.deepEqual(
      docs
        .filter((d) => d.metadata.labels?.["app.kubernetes.io/component"] !== "operator")
        .map((d) => d.kind),
      [],
    );
  });
});

describe("the vibetalk chart, installed on a real control plane", { timeout: 600_000 }, () => {
  let cp: ControlPlane;
  let installChart: Awaited<ReturnType<typeof renderableChart>>;
  const NS = "vibetalk-system";
  // Operator pods stay Pending (no node matches), so the Service gets no endpoints and nothing
  // here ever dials a kwok pod's address, through the APIService or otherwise.
  const values: Values = {
    ...EXTERNAL_SERVICES,
    operator: { nodeSelector: { "vibetalk.io/test": "no-such-node" } },
  };
  const kubectlJson = async <T>(args: string[]): Promise<T> =>
    JSON.parse(await cp.kubectl([...args, "-o", "json"])) as T;

  before(async () => {
    installChart = await renderableChart();
    cp = await startControlPlane({ nodes: 1 });
  });
  after(async () => {
    await cp?.stop();
    await installChart?.remove();
  });

  test("helm install creates the CRD, the operator Deployment, the APIService and a valid ChatCluster", async () => {
    const file = await installChart.writeValues(values);
    await installChart.helm(
      ["install", "vibetalk", installChart.dir, "--namespace", NS, "--create-namespace", "-f", file],
      { kubeconfig: cp.kubeconfigPath },
    );
    const crd = await kubectlJson<{ status: { conditions: { type: string; status: string }[] } }>([
      "get",
      "crd",
      "chatclusters.vibetalk.io",
    ]);
    assert.ok(crd.status.conditions.some((c) => c.type === "Established" && c.status === "True"));
    const d = await kubectlJson<Deployment>(["-n", NS, "get", "deployment", "vibetalk-operator"]);
    assert.equal(d.spec.replicas, 2);
    // The controller manager turns it into pods, which wait for a node.
    await waitFor("operator pods created", async () => {
      const pods = await kubectlJson<{ items: unknown[] }>([
        "-n",
        NS,
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/component=operator",
      ]);
      return pods.items.length === 2;
    });
    await cp.kubectl(["get", "apiservice", "v1beta1.external.metrics.k8s.io"]);
    await cp.kubectl(["-n", NS, "get", "clusterrolebinding", "vibetalk-operator"]);
    const cc = await kubectlJson<ChatClusterObject>(["-n", NS, "get", "chatcluster", "chat"]);
    assert.equal(cc.spec.partitions, 64, "the API server kept the spec");
    assert.equal(cc.spec.service !== undefined, true, "the CRD's defaults were applied");
  });

  test("helm upgrade keeps the generated JWT secret; helm uninstall removes the operator and keeps the Secret", async () => {
    const jwt = async () =>
      (await kubectlJson<Secret>(["-n", NS, "get", "secret", "vibetalk-backends"])).data["jwt-secret"];
    const before = await jwt();
    assert.ok(before);
    const file = await installChart.writeValues({
      ...values,
      operator: { ...(values.operator as Values), replicas: 1 },
    });
    await installChart.helm(["upgrade", "vibetalk", installChart.dir, "--namespace", NS, "-f", file], {
      kubeconfig: cp.kubeconfigPath,
    });
    assert.equal(await jwt(), before);
    const d = await kubectlJson<Deployment>(["-n", NS, "get", "deployment", "vibetalk-operator"]);
    assert.equal(d.spec.replicas, 1);

    await installChart.helm(["uninstall", "vibetalk", "--namespace", NS, "--wait"], {
      kubeconfig: cp.kubeconfigPath,
    });
    const left = await cp.kubectl(["-n", NS, "get", "deployments,secrets", "-o", "name"]);
    assert.doesNotMatch(left, /deployment/);
    assert.match(left, /secret\/vibetalk-backends/, "helm.sh/resource-policy: keep");
    await cp.kubectl(["get", "crd", "chatclusters.vibetalk.io"]); // helm never deletes crds/
  });
});
