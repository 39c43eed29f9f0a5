import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { loadAll } from "js-yaml";
import { startPodRunner, type PodRunner } from "@vibetalk/pod-runner";
import {
  freePort,
  repoRoot,
  startControlPlane,
  startMongo,
  startRabbitMQ,
  startRedis,
  tempDir,
  waitFor,
  type ControlPlane,
  type MongoService,
  type RabbitMQService,
  type RedisService,
} from "@vibetalk/testkit";

export interface ClusterOptions {
  /** ChatCluster name and namespace (default chat / default). */
  name?: string;
  namespace?: string;
  replicas?: number;
  partitions?: number;
  drainSeconds?: number;
  /** Autoscaling on connections (off by default: spec.replicas rules). */
  autoscaling?: { minReplicas: number; maxReplicas: number; targetConnectionsPerPod: number };
  /** RabbitMQ management plugin, for consumer listings (default true). */
  management?: boolean;
  log?: (message: string) => void;
}

type Json = Record<string, unknown>;

export interface VibeTalkCluster {
  cp: ControlPlane;
  runner: PodRunner;
  redis: RedisService;
  rabbit: RabbitMQService;
  mongo: MongoService;
  name: string;
  namespace: string;
  kubeConfig: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  /** The ChatCluster as the API server has it. */
  chatCluster(): Promise<Json>;
  /** chat-node pods that are Ready and not terminating, with their loopback URLs. */
  readyChatNodes(): Promise<{ name: string; url: string }[]>;
  /** Patches spec (merge patch on the ChatCluster). */
  patchSpec(spec: Json): Promise<void>;
  /** Waits until the ChatCluster's condition has the status. */
  waitForCondition(type: string, status: "True" | "False", timeoutMs?: number): Promise<Json>;
  /** Logs of a pod's process. */
  podLogPath(pod: string): string;
  stop(): Promise<void>;
}

const CHAT_NODE_IMAGE = "vibetalk/chat-node:0.1.0";

/**
 * The operator install bundle as a laptop runs it: one replica on the node's network (127.0.0.1), its HTTP
 * and external-metrics ports free ones, and the APIService's Service an ExternalName for localhost,
 * since Services get no endpoints for loopback pod addresses. Everything else is applied as shipped.
 */
export function localOperatorBundle(docs: Json[], metricsPort: number, externalMetricsPort: number): Json[] {
  return docs.map((doc) => {
    const d = structuredClone(doc) as Json & { kind: string; spec?: Json };
    if (d.kind === "Deployment") {
      const spec = d.spec as { replicas: number; template: { spec: Json & { containers: Json[] } } };
      spec.replicas = 1;
      spec.template.spec.hostNetwork = true;
      const c = spec.template.spec.containers[0] as {
        env: { name: string; value?: string }[];
        ports: { name: string; containerPort: number }[];
      };
      c.env = [
        ...c.env.filter((e) => !["METRICS_PORT", "EXTERNAL_METRICS_PORT", "METRICS_HOST"].includes(e.name)),
        { name: "METRICS_HOST", value: "127.0.0.1" },
        { name: "METRICS_PORT", value: String(metricsPort) },
        { name: "EXTERNAL_METRICS_PORT", value: String(externalMetricsPort) },
      ];
      c.ports = [
        { name: "http", containerPort: metricsPort },
        { name: "https", containerPort: externalMetricsPort },
      ];
    }
    if (d.kind === "Service") {
      d.spec = {
        type: "ExternalName",
        externalName: "localhost",
        ports: [{ name: "https", port: externalMetricsPort }],
      };
    }
    if (d.kind === "APIService") {
      (d.spec as { service: { port: number } }).service.port = externalMetricsPort;
    }
    return d;
  });
}

/**
 * A whole VibeTalk on loopback: a real control plane, real Redis/RabbitMQ/FerretDB, the operator installed
 * from manifests/ and running as a pod, and a ChatCluster whose chat-node pods run as real processes.
 */
export async function startVibeTalkCluster(o: ClusterOptions = {}): Promise<VibeTalkCluster> {
  const log = o.log ?? (() => undefined);
  const name = o.name ?? "chat";
  const namespace = o.namespace ?? "default";
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    log("starting control plane, Redis, RabbitMQ, FerretDB…");
    const [cp, redis, rabbit, mongo] = await Promise.all([
      startControlPlane({ nodes: 0 }),
      startRedis(),
      startRabbitMQ({ management: o.management ?? true }),
      startMongo(),
    ]);
    stops.push(cp.stop, redis.stop, rabbit.stop, mongo.stop);
    const work = await tempDir("cluster");
    stops.push(work.remove);
    const tsx = (main: string) => ({
      command: process.execPath,
      args: ["--import", "tsx", join(repoRoot, main)],
      cwd: repoRoot,
    });
    const runner = await startPodRunner({
      kubeconfigPath: cp.kubeconfigPath,
      workDir: join(work.path, "pods"),
      images: {
        "vibetalk/chat-node": tsx("chat-node/src/main.ts"),
        "vibetalk/operator": tsx("operator/src/main.ts"),
      },
      log: (m) => log(`runner: ${m}`),
    });
    stops.push(runner.stop);
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromFile(cp.kubeconfigPath);
    const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    const custom = kubeConfig.makeApiClient(k8s.CustomObjectsApi);

    log("installing the CRD and the operator from manifests/…");
    await cp.kubectl(["apply", "-f", join(repoRoot, "crds")]);
    await cp.kubectl([
      "wait",
      "--for=condition=Established",
      "crd/chatclusters.vibetalk.io",
      "--timeout=30s",
    ]);
    const docs = (
      loadAll(await readFile(join(repoRoot, "manifests/operator.yaml"), "utf8")) as Json[]
    ).filter(Boolean);
    const [metricsPort, externalMetricsPort] = await Promise.all([freePort(), freePort()]);
    await cp.kubectl(["apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: localOperatorBundle(docs, metricsPort, externalMetricsPort),
      }),
    });

    log(`creating ChatCluster ${namespace}/${name}…`);
    if (namespace !== "default") await cp.kubectl(["create", "namespace", namespace]);
    const secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: `${name}-backends`, namespace },
      stringData: {
        "rabbitmq-url": rabbit.url,
        "redis-url": redis.url,
        "mongodb-url": mongo.url,
        "jwt-secret": randomBytes(24).toString("hex"),
      },
    };
    const ref = (key: string) => ({ secretRef: { name: `${name}-backends`, key } });
    const chatCluster = {
      apiVersion: "vibetalk.io/v1alpha1",
      kind: "ChatCluster",
      metadata: { name, namespace },
      spec: {
        image: CHAT_NODE_IMAGE,
        replicas: o.replicas ?? 2,
        partitions: o.partitions ?? 16,
        userExchanges: 8,
        autoscaling: o.autoscaling ? { enabled: true, ...o.autoscaling } : { enabled: false },
        rabbitmq: ref("rabbitmq-url"),
        redis: ref("redis-url"),
        mongodb: ref("mongodb-url"),
        jwtSecretRef: { name: `${name}-backends`, key: "jwt-secret" },
        drainSeconds: o.drainSeconds ?? 10,
      },
    };
    await cp.kubectl(["apply", "-f", "-"], {
      input: JSON.stringify({ apiVersion: "v1", kind: "List", items: [secret, chatCluster] }),
    });

    const get = async (): Promise<Json> =>
      (await custom.getNamespacedCustomObject({
        group: "vibetalk.io",
        version: "v1alpha1",
        namespace,
        plural: "chatclusters",
        name,
      })) as Json;
    const conditionOf = (cc: Json, type: string): Json | undefined =>
      ((cc.status as { conditions?: Json[] } | undefined)?.conditions ?? []).find((c) => c.type === type);
    const describe = async (): Promise<string> => {
      const cc = await get().catch(() => ({}));
      const pods = await cp.kubectl(["get", "pods", "-A", "-o", "wide"]).catch((e: unknown) => String(e));
      return `status: ${JSON.stringify((cc as Json).status)}\n${pods}`;
    };
    const cluster: VibeTalkCluster = {
      cp,
      runner,
      redis,
      rabbit,
      mongo,
      name,
      namespace,
      kubeConfig,
      core,
      chatCluster: get,
      readyChatNodes: async () => {
        const pods = await core.listNamespacedPod({
          namespace,
          labelSelector: `app.kubernetes.io/instance=${name},app.kubernetes.io/component=chat-node`,
        });
        return pods.items
          .filter(
            (p) =>
              !p.metadata?.deletionTimestamp &&
              p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
          )
          .map((p) => ({ name: p.metadata?.name ?? "", url: `http://${p.status?.podIP}:8080` }))
          .sort((a, b) => a.name.localeCompare(b.name));
      },
      patchSpec: async (spec) => {
        await cp.kubectl([
          "patch",
          "chatcluster",
          name,
          "-n",
          namespace,
          "--type=merge",
          "-p",
          JSON.stringify({ spec }),
        ]);
      },
      waitForCondition: (type, status, timeoutMs = 90_000) =>
        waitFor(
          `ChatCluster condition ${type}=${status}`,
          async () => {
            const cc = await get();
            return conditionOf(cc, type)?.status === status ? cc : undefined;
          },
          timeoutMs,
          200,
          describe,
        ),
      podLogPath: (pod) => join(work.path, "pods", `${namespace}.${pod}.log`),
      stop: stopAll,
    };
    log("waiting for the ChatCluster to be Ready…");
    await cluster.waitForCondition("Ready", "True", 120_000);
    log("cluster ready");
    return cluster;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
