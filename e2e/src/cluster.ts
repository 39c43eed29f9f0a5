import { randomBytes } from "node:crypto";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import {
  acquireHostNetwork,
  repoRoot,
  startControlPlane,
  startNode,
  startMongo,
  startRabbitMQ,
  startRedis,
  waitFor,
  waitForCrdEstablished,
  type ControlPlane,
  type HostNetwork,
  type KubeNode,
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
  /** kube-router enforces NetworkPolicy on the node (default false). */
  networkPolicy?: boolean;
  /**
   * The operator watches the ChatCluster's namespace alone, installed from the generator's
   * `--watch-namespace` bundle (its rights a Role there) instead of manifests/operator.yaml.
   */
  watchOwnNamespace?: boolean;
  /** More ChatCluster spec fields (merged over the defaults here), or a function of the started services. */
  spec?: Json | ((k: LocalKubernetes) => Json);
  log?: (message: string) => void;
}

type Json = Record<string, unknown>;

export interface VibeTalkCluster {
  cp: ControlPlane;
  /** The real node: containerd, kubelet, kube-proxy; pods on the bridge. */
  node: KubeNode;
  net: HostNetwork;
  redis: RedisService;
  rabbit: RabbitMQService;
  mongo: MongoService;
  name: string;
  namespace: string;
  kubeConfig: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  /** The ChatCluster as the API server has it. */
  chatCluster(): Promise<Json>;
  /** chat-node pods that are Ready and not terminating, with their URLs on the pod network. */
  readyChatNodes(): Promise<{ name: string; url: string }[]>;
  /** The chat Service's ready endpoints (address:port), from its EndpointSlices: what a proxy follows. */
  chatEndpoints(): Promise<string[]>;
  /**
   * Its endpoints by state: `ready`, and `draining` (terminating but still serving, as Kubernetes marks a
   * pod in its grace period whose readiness still passes: its sessions may reach it, new ones may not).
   */
  chatEndpointStates(): Promise<{ ready: string[]; draining: string[] }>;
  /** Patches spec (merge patch on the ChatCluster). */
  patchSpec(spec: Json): Promise<void>;
  /** Waits until the ChatCluster's condition has the status. */
  waitForCondition(type: string, status: "True" | "False", timeoutMs?: number): Promise<Json>;
  /** `kubectl logs` of a pod (the chat-node container, or the one named). */
  podLogs(pod: string, options?: { previous?: boolean; container?: string }): Promise<string>;
  /** SIGKILLs a pod's container on the node (the kubelet restarts it in place). */
  killContainer(pod: string): Promise<void>;
  stop(): Promise<void>;
}

/** The chat-node image scripts/images builds and the node imports (manifests and chart default to it). */
export const CHAT_NODE_IMAGE = "localhost/vibetalk/chat-node:0.1.0";

/** A real single-node Kubernetes with VibeTalk's backing services on the bridge's gateway, nothing installed. */
export interface LocalKubernetes {
  net: HostNetwork;
  cp: ControlPlane;
  node: KubeNode;
  redis: RedisService;
  rabbit: RabbitMQService;
  mongo: MongoService;
  stop(): Promise<void>;
}

/**
 * The node's network, the control plane, Redis, RabbitMQ and FerretDB (listening on the gateway address,
 * which pods reach), then the node with the images imported. `stop` removes all of it.
 */
export async function startLocalKubernetes(
  o: { management?: boolean; networkPolicy?: boolean; log?: (message: string) => void } = {},
): Promise<LocalKubernetes> {
  const log = o.log ?? (() => undefined);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    log("setting up the node's network…");
    const net = await acquireHostNetwork({ log });
    stops.push(net.release);
    log("starting the control plane, Redis, RabbitMQ, FerretDB…");
    const host = net.gateway;
    const [cp, redis, rabbit, mongo] = await Promise.all([
      startControlPlane({ nodes: 0, nodeAddress: host }),
      startRedis({ host }),
      startRabbitMQ({ management: o.management ?? true, host }),
      startMongo({ host }),
    ]);
    stops.push(cp.stop, redis.stop, rabbit.stop, mongo.stop);
    log("starting the node (containerd, kubelet, kube-proxy) and importing the images…");
    const node = await startNode(cp, net, { log, networkPolicy: o.networkPolicy ?? false });
    stops.push(node.stop);
    return { net, cp, node, redis, rabbit, mongo, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * A whole VibeTalk on one real Kubernetes node: the control plane, containerd with the kubelet and
 * kube-proxy, Redis/RabbitMQ/FerretDB on the bridge's gateway address, the CRD and the operator installed
 * from crds/ and manifests/ exactly as shipped, and a ChatCluster whose chat-node pods run from the images
 * built by scripts/images.
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
    const base = await startLocalKubernetes({
      log,
      networkPolicy: o.networkPolicy ?? false,
      ...(o.management === undefined ? {} : { management: o.management }),
    });
    stops.push(base.stop);
    const { net, cp, node, redis, rabbit, mongo } = base;
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromFile(cp.kubeconfigPath);
    const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    const custom = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    const discovery = kubeConfig.makeApiClient(k8s.DiscoveryV1Api);

    log("installing the CRD and the operator from crds/ and manifests/…");
    await cp.kubectl(["apply", "--server-side", "-f", join(repoRoot, "crds")]);
    await waitForCrdEstablished(cp, "chatclusters.vibetalk.io");
    if (namespace !== "default") await cp.kubectl(["create", "namespace", namespace]);
    if (o.watchOwnNamespace) {
      const { operatorManifestText } = await import("../../operator/src/manifests/generate.js");
      // The API server and RabbitMQ listen on ports of their own here: the operator's NetworkPolicy
      // must name them (it is enforced when the node runs kube-router).
      const port = (url: string) => Number(new URL(url).port);
      await cp.kubectl(["apply", "--server-side", "-f", "-"], {
        input: await operatorManifestText({
          watchNamespace: namespace,
          egressPorts: { apiServer: [port(cp.server)], rabbitmq: [port(rabbit.url)] },
        }),
      });
    } else {
      await cp.kubectl(["apply", "--server-side", "-f", join(repoRoot, "manifests/operator.yaml")]);
    }

    log(`creating ChatCluster ${namespace}/${name}…`);
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
        ...(typeof o.spec === "function" ? o.spec(base) : o.spec),
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
    const chatEndpointStates = async (): Promise<{ ready: string[]; draining: string[] }> => {
      const slices = await discovery.listNamespacedEndpointSlice({
        namespace,
        labelSelector: `kubernetes.io/service-name=${name}`,
      });
      const ready: string[] = [];
      const draining: string[] = [];
      for (const slice of slices.items) {
        const port = slice.ports?.find((p) => p.name === "http")?.port;
        if (!port) continue;
        for (const e of slice.endpoints) {
          const address = `${e.addresses[0]}:${port}`;
          if (e.conditions?.ready && !e.conditions.terminating) ready.push(address);
          else if (e.conditions?.terminating && e.conditions.serving) draining.push(address);
        }
      }
      return { ready: ready.sort(), draining: draining.sort() };
    };
    const containerId = async (pod: string): Promise<string> => {
      const p = await core.readNamespacedPod({ name: pod, namespace });
      const id = p.status?.containerStatuses?.find((c) => c.name === "chat-node")?.containerID;
      if (!id) throw new Error(`pod ${pod} has no running chat-node container`);
      return id.replace(/^containerd:\/\//, "");
    };
    const cluster: VibeTalkCluster = {
      cp,
      node,
      net,
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
      chatEndpointStates,
      chatEndpoints: async () => (await chatEndpointStates()).ready,
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
      podLogs: (pod, lo = {}) =>
        cp.kubectl([
          "logs",
          pod,
          "-n",
          namespace,
          "-c",
          lo.container ?? "chat-node",
          ...(lo.previous ? ["--previous"] : []),
        ]),
      killContainer: async (pod) => {
        await node.ctr(["tasks", "kill", "--signal", "SIGKILL", await containerId(pod)]);
      },
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
