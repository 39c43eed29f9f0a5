import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { startControlPlane, tempDir, toolPath, waitFor, type ControlPlane } from "@vibetalk/testkit";
import { startPodRunner, type PodRunner } from "../../src/index.js";

let cp: ControlPlane;
let runner: PodRunner;
let work: { path: string; remove(): Promise<void> };
let core: k8s.CoreV1Api;
const termFile = (): string => join(work.path, "terminated.txt");

before(async () => {
  cp = await startControlPlane({ nodes: 0 });
  work = await tempDir("runner-test");
  runner = await startPodRunner({
    kubeconfigPath: cp.kubeconfigPath,
    workDir: work.path,
    images: {
      "example/echo": {
        command: process.execPath,
        args: [join(import.meta.dirname, "../fixtures/echo-server.mjs")],
      },
    },
    log: () => undefined,
  });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  core = kc.makeApiClient(k8s.CoreV1Api);
  await cp.kubectl(["apply", "-f", "-"], {
    input: JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [
        {
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: "s", namespace: "default" },
          stringData: { token: "t0ps3cret" },
        },
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "c", namespace: "default" },
          data: { MODE: "test" },
        },
        { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "reader", namespace: "default" } },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "Role",
          metadata: { name: "cm-reader", namespace: "default" },
          rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["list"] }],
        },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "RoleBinding",
          metadata: { name: "reader", namespace: "default" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "cm-reader" },
          subjects: [{ kind: "ServiceAccount", name: "reader", namespace: "default" }],
        },
      ],
    }),
  });
});
after(async () => {
  await runner?.stop();
  await cp?.stop();
  await work?.remove();
});

function deployment(name: string, serviceAccountName: string): object {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: "default" },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          serviceAccountName,
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: "echo",
              image: "example/echo:1.0",
              ports: [{ name: "http", containerPort: 8080 }],
              envFrom: [{ configMapRef: { name: "c" } }],
              env: [
                { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                { name: "TOKEN", valueFrom: { secretKeyRef: { name: "s", key: "token" } } },
                { name: "TERM_FILE", value: termFile() },
                { name: "KUBECTL", value: toolPath("kubectl") },
              ],
              readinessProbe: { httpGet: { path: "/readyz", port: "http" }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  };
}

async function readyPods(app: string): Promise<k8s.V1Pod[]> {
  const pods = await core.listNamespacedPod({ namespace: "default", labelSelector: `app=${app}` });
  return pods.items.filter(
    (p) =>
      !p.metadata?.deletionTimestamp &&
      p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
  );
}

test("a Deployment's pods run as local processes on loopback IPs with env from the pod spec", async () => {
  await cp.kubectl(["apply", "-f", "-"], { input: JSON.stringify(deployment("echo", "reader")) });
  const pods = await waitFor("2 ready pods", async () => {
    const r = await readyPods("echo");
    return r.length === 2 ? r : undefined;
  });
  const ips = pods.map((p) => p.status?.podIP ?? "");
  assert.equal(new Set(ips).size, 2, "each pod has its own IP");
  for (const p of pods) {
    assert.match(p.status?.podIP ?? "", /^127\.1\.\d+\.\d+$/);
    const body = (await (await fetch(`http://${p.status?.podIP}:8080/`)).json()) as {
      env: Record<string, string>;
    };
    assert.equal(body.env.POD_NAME, p.metadata?.name);
    assert.equal(body.env.TOKEN, "t0ps3cret");
    assert.equal(body.env.MODE, "test");
  }
  const dep = await waitFor("deployment ready", async () => {
    const d = await kcApps().readNamespacedDeployment({ name: "echo", namespace: "default" });
    return d.status?.readyReplicas === 2 ? d : undefined;
  });
  assert.equal(dep.status?.readyReplicas, 2);
});

test("the pod's ServiceAccount token carries exactly its RBAC rights", async () => {
  const [pod] = await readyPods("echo");
  const who = (await (await fetch(`http://${pod?.status?.podIP}:8080/whoami`)).json()) as { canList: string };
  assert.equal(who.canList, "yes", "the Role lets the pod list configmaps");
  await cp.kubectl(["apply", "-f", "-"], {
    input: JSON.stringify({
      ...deployment("nobody", "default"),
      spec: { ...(deployment("nobody", "default") as { spec: object }).spec, replicas: 1 },
    }),
  });
  const [other] = await waitFor("nobody pod", async () => {
    const r = await readyPods("nobody");
    return r.length === 1 ? r : undefined;
  });
  const denied = (await (await fetch(`http://${other?.status?.podIP}:8080/whoami`)).json()) as {
    canList: string;
  };
  assert.equal(denied.canList, "no", "the default ServiceAccount has no such right");
});

test("deleting a pod sends SIGTERM, waits, and removes it; the ReplicaSet replaces it", async () => {
  const [victim] = await readyPods("echo");
  const name = victim?.metadata?.name ?? "";
  await core.deleteNamespacedPod({ name, namespace: "default" });
  await waitFor("pod gone", async () => {
    const pods = await core.listNamespacedPod({ namespace: "default", labelSelector: "app=echo" });
    return pods.items.some((p) => p.metadata?.name === name) ? undefined : true;
  });
  assert.ok(
    existsSync(termFile()) && readFileSync(termFile(), "utf8").includes(name),
    "the process saw SIGTERM",
  );
  await waitFor("replacement ready", async () => ((await readyPods("echo")).length === 2 ? true : undefined));
});

test("a crashed process is restarted and its restartCount raised", async () => {
  const [pod] = await readyPods("echo");
  const pid = runner.pid("default", pod?.metadata?.name ?? "");
  assert.ok(pid);
  process.kill(pid, "SIGKILL");
  const restarted = await waitFor("restartCount 1 and ready", async () => {
    const p = await core.readNamespacedPod({ name: pod?.metadata?.name ?? "", namespace: "default" });
    const cs = p.status?.containerStatuses?.[0];
    return cs?.restartCount === 1 && cs.ready ? p : undefined;
  });
  assert.equal(restarted.status?.containerStatuses?.[0]?.restartCount, 1);
});

function kcApps(): k8s.AppsV1Api {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  return kc.makeApiClient(k8s.AppsV1Api);
}
