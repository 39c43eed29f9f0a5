/**
 * Wires the operator: supervised informers (ChatClusters, chat-node Deployments and pods) feed a
 * per-key work queue; the reconciler runs only while this instance leads; the caches also answer the
 * external metrics API on every instance, so a standby can serve the HPA.
 */
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Deployment,
  type V1Pod,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { GROUP, KIND, PLURAL, VERSION } from "../api/v1alpha1.js";
import type { OperatorConfig } from "../config.js";
import type { ClusterConnections } from "../http/external-metrics.js";
import type { OperatorMetrics } from "../metrics.js";
import { MANAGED_BY, podSelector } from "../resources/meta.js";
import { errorMessage } from "./errors.js";
import { createSupervisedInformer, type SupervisedInformer } from "./informers.js";
import { createKubeClusterApi, matchesSelector, normalizeCluster } from "./kube.js";
import { LeaderElector } from "./leader.js";
import { createKubeLeaseStore } from "./lease-store.js";
import type { ConnectionSource, EventRecorder, TopologyCleaner } from "./ports.js";
import { WorkQueue } from "./queue.js";
import { createReconciler, type ReconcileOutcome } from "./reconcile.js";

export const POD_INFORMER_SELECTOR = `app.kubernetes.io/managed-by=${MANAGED_BY},app.kubernetes.io/component=chat-node`;
export const DEPLOYMENT_INFORMER_SELECTOR = `app.kubernetes.io/managed-by=${MANAGED_BY}`;

export interface OperatorDeps {
  kc: KubeConfig;
  config: OperatorConfig;
  log: Logger;
  metrics: OperatorMetrics;
  events: EventRecorder;
  connections: ConnectionSource;
  topology: TopologyCleaner;
  /** Called when leadership is lost after having been held (main exits so a restart campaigns anew). */
  onLostLeadership?: () => void;
}

export interface Operator {
  start(): Promise<void>;
  stop(): Promise<void>;
  isLeader(): boolean;
  unhealthyInformers(): string[];
  connectionsFor(namespace: string): Promise<ClusterConnections[]>;
  /** Enqueue one key (tests, manual nudges). */
  enqueue(key: string): void;
}

type ListFn<T extends KubernetesObject> = () => Promise<KubernetesListObject<T>>;

function listFunctions(kc: KubeConfig, ns: string | undefined) {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const crd = { group: GROUP, version: VERSION, plural: PLURAL };
  const clusters: ListFn<KubernetesObject> = async () =>
    (ns
      ? await custom.listNamespacedCustomObject({ ...crd, namespace: ns })
      : await custom.listClusterCustomObject(crd)) as KubernetesListObject<KubernetesObject>;
  const deployments: ListFn<V1Deployment> = () =>
    ns
      ? apps.listNamespacedDeployment({ namespace: ns, labelSelector: DEPLOYMENT_INFORMER_SELECTOR })
      : apps.listDeploymentForAllNamespaces({ labelSelector: DEPLOYMENT_INFORMER_SELECTOR });
  const pods: ListFn<V1Pod> = () =>
    ns
      ? core.listNamespacedPod({ namespace: ns, labelSelector: POD_INFORMER_SELECTOR })
      : core.listPodForAllNamespaces({ labelSelector: POD_INFORMER_SELECTOR });
  const nsPath = ns ? `/namespaces/${ns}` : "";
  return {
    clusters: { list: clusters, path: `/apis/${GROUP}/${VERSION}${nsPath}/${PLURAL}` },
    deployments: { list: deployments, path: `/apis/apps/v1${nsPath}/deployments` },
    pods: { list: pods, path: `/api/v1${nsPath}/pods` },
  };
}

/** The ChatCluster an object belongs to: its controller owner, else its instance label. */
export function clusterKeyOf(obj: KubernetesObject): string | undefined {
  const ns = obj.metadata?.namespace;
  if (!ns) return undefined;
  if (obj.kind === KIND || obj.apiVersion?.startsWith(`${GROUP}/`))
    return `${ns}/${obj.metadata?.name ?? ""}`;
  const owner = obj.metadata?.ownerReferences?.find(
    (r) => r.kind === KIND && r.apiVersion.startsWith(`${GROUP}/`),
  );
  if (owner) return `${ns}/${owner.name}`;
  const instance = obj.metadata?.labels?.["app.kubernetes.io/instance"];
  return instance ? `${ns}/${instance}` : undefined;
}

export function createOperator(deps: OperatorDeps): Operator {
  const { kc, config, log, metrics } = deps;
  const lists = listFunctions(kc, config.watchNamespace);
  let leader = !config.leaderElect;
  const queue = new WorkQueue({
    concurrency: config.workers,
    onDepth: (d) => metrics.queueDepth.set(d),
    onError: (key, err, retryInMs) =>
      log.warn({ cluster: key, err: errorMessage(err), retryInMs }, "reconcile failed"),
  });
  const enqueue = (obj: KubernetesObject) => {
    const key = clusterKeyOf(obj);
    if (key && leader) queue.add(key);
  };
  const informerOf = <T extends KubernetesObject>(
    name: string,
    l: { list: ListFn<T>; path: string },
    labelSelector?: string,
  ): SupervisedInformer<T> =>
    createSupervisedInformer<T>({
      name,
      kc,
      path: l.path,
      list: l.list,
      ...(labelSelector ? { labelSelector } : {}),
      onEvent: (_verb, obj) => enqueue(obj),
      onHealth: (h) => metrics.informerHealthy.set({ resource: name }, h ? 1 : 0),
      log,
    });
  const clusters = informerOf("chatclusters", lists.clusters);
  const deployments = informerOf("deployments", lists.deployments, DEPLOYMENT_INFORMER_SELECTOR);
  const pods = informerOf("pods", lists.pods, POD_INFORMER_SELECTOR);
  const informers: SupervisedInformer<KubernetesObject>[] = [clusters, deployments, pods];

  const reconcile = createReconciler({
    api: createKubeClusterApi(kc, { podCache: pods }),
    events: deps.events,
    connections: deps.connections,
    topology: deps.topology,
    metrics,
    log,
    resyncMs: config.resyncMs,
    defaultImage: config.chatNodeImage,
  });

  const handle = async (key: string): Promise<ReconcileOutcome> => {
    const end = metrics.reconcileDuration.startTimer();
    try {
      const out = await reconcile(key);
      metrics.reconciles.inc({ result: out.result });
      end({ result: out.result });
      log.debug({ cluster: key, result: out.result }, "reconciled");
      return out;
    } catch (err) {
      metrics.reconciles.inc({ result: "error" });
      end({ result: "error" });
      throw err;
    }
  };

  const enqueueAll = () => {
    for (const c of clusters.list()) enqueue(c);
  };
  let resyncTimer: NodeJS.Timeout | undefined;
  const startLeading = () => {
    leader = true;
    metrics.isLeader.set(1);
    queue.start(handle);
    enqueueAll();
    resyncTimer = setInterval(enqueueAll, config.resyncMs);
  };
  const stopLeading = async () => {
    leader = false;
    metrics.isLeader.set(0);
    if (resyncTimer) clearInterval(resyncTimer);
    await queue.stop();
  };

  const elector = config.leaderElect
    ? new LeaderElector({
        store: createKubeLeaseStore(kc, config.leaseNamespace, config.leaseName),
        identity: config.identity,
        leaseDurationMs: config.leaseDurationMs,
        renewDeadlineMs: config.renewDeadlineMs,
        retryPeriodMs: config.retryPeriodMs,
        onStartedLeading: startLeading,
        onStoppedLeading: () => {
          void stopLeading().then(() => deps.onLostLeadership?.());
        },
        log,
      })
    : undefined;

  return {
    async start() {
      await Promise.all(informers.map((i) => i.start()));
      if (elector) elector.start();
      else startLeading();
    },
    async stop() {
      if (elector) await elector.stop();
      await stopLeading();
      await Promise.all(informers.map((i) => i.stop()));
    },
    isLeader: () => leader,
    unhealthyInformers: () => informers.filter((i) => !i.healthy()).map((i) => i.name),
    async connectionsFor(namespace) {
      const all = pods.list(namespace);
      return Promise.all(
        clusters.list(namespace).map(async (c) => {
          const cluster = normalizeCluster(c);
          const own = all.filter((p) =>
            matchesSelector(p.metadata?.labels, podSelector(cluster.metadata.name)),
          );
          return { cluster: cluster.metadata.name, connections: await deps.connections.total(cluster, own) };
        }),
      );
    },
    enqueue: (key) => {
      if (leader) queue.add(key);
    },
  };
}
