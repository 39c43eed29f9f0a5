/** An in-memory ClusterApi and recorders for unit tests of the reconcile's control flow (no I/O). */
import type { KubernetesObject, V1ConfigMap, V1Deployment, V1Pod } from "@kubernetes/client-node";
import { pino } from "pino";
import type { ChatCluster, ChatClusterStatus } from "../../src/api/v1alpha1.js";
import type { ClusterApi, EventRecorder, TopologyCleaner } from "../../src/controller/ports.js";
import { createPodAnnotationConnectionSource } from "../../src/controller/connections.js";
import { createMetrics } from "../../src/metrics.js";
import type { ObjectRef } from "../../src/resources/index.js";
import type { ReconcilerDeps } from "../../src/controller/reconcile.js";

export class FakeApi implements ClusterApi {
  clusters = new Map<string, ChatCluster>();
  objects = new Map<string, KubernetesObject>();
  pods: V1Pod[] = [];
  applied: string[] = [];
  removed: string[] = [];
  statusWrites = 0;
  failApply: ((obj: KubernetesObject) => Error | undefined) | undefined;
  rv = 1;

  static key(kind: string | undefined, ns: string | undefined, name: string | undefined) {
    return `${kind}/${ns}/${name}`;
  }
  async getCluster(ns: string, name: string) {
    const c = this.clusters.get(`${ns}/${name}`);
    return c ? structuredClone(c) : undefined;
  }
  /**
   * Owners of each Deployment's spec.replicas, modelled on server-side apply: a manager that stops
   * sending the field lets go of it, and a field nobody owns any more is reset to its default (1).
   */
  replicaOwners = new Map<string, Set<string>>();
  clusterReplicaWrites: number[] = [];

  async apply(obj: KubernetesObject, options: { fieldManager?: string } = {}) {
    const err = this.failApply?.(obj);
    if (err) throw err;
    const k = FakeApi.key(obj.kind, obj.metadata?.namespace, obj.metadata?.name);
    const manager = options.fieldManager ?? "vibetalk-operator";
    if (obj.kind === "Deployment") return this.applyDeployment(k, obj as V1Deployment, manager);
    this.applied.push(k);
    const prev = this.objects.get(k) as V1ConfigMap | undefined;
    const next = structuredClone(obj) as V1ConfigMap;
    // like server-side apply: fields the operator does not send (a ConfigMap's foreign keys) survive
    if (prev?.data && obj.kind === "ConfigMap") next.data = { ...prev.data, ...(next.data ?? {}) };
    next.metadata = { ...next.metadata, resourceVersion: String(this.rv++) };
    this.objects.set(k, next);
  }
  private applyDeployment(k: string, obj: V1Deployment, manager: string) {
    this.applied.push(manager === "vibetalk-operator" ? k : `${k}@${manager}`);
    const prev = this.objects.get(k) as V1Deployment | undefined;
    const owners = this.replicaOwners.get(k) ?? new Set<string>();
    this.replicaOwners.set(k, owners);
    const sent = obj.spec?.replicas;
    if (sent !== undefined) owners.add(manager);
    else owners.delete(manager);
    const replicas = sent ?? (owners.size > 0 ? prev?.spec?.replicas : undefined) ?? 1;
    const next: V1Deployment =
      manager === "vibetalk-operator"
        ? structuredClone(obj)
        : { ...structuredClone(prev ?? obj), spec: structuredClone(prev?.spec ?? obj.spec) };
    if (manager !== "vibetalk-operator" && prev?.metadata) next.metadata = structuredClone(prev.metadata);
    if (next.spec) next.spec.replicas = replicas;
    if (prev?.status) next.status = prev.status;
    next.metadata = {
      ...next.metadata,
      resourceVersion: String(this.rv++),
      managedFields: [...owners].map((m) => ({
        manager: m,
        operation: m === "kube-controller-manager" ? "Update" : "Apply",
        fieldsType: "FieldsV1",
        fieldsV1: { "f:spec": { "f:replicas": {} } },
      })),
    };
    this.objects.set(k, next);
  }
  /** The HPA controller's write through the scale subresource: an Update that takes the field over. */
  hpaScale(ns: string, name: string, replicas: number) {
    const k = FakeApi.key("Deployment", ns, name);
    const d = this.objects.get(k) as V1Deployment | undefined;
    if (!d?.spec) throw new Error(`no Deployment ${k}`);
    d.spec.replicas = replicas;
    this.replicaOwners.set(k, new Set(["kube-controller-manager"]));
    d.metadata = {
      ...d.metadata,
      managedFields: [
        {
          manager: "kube-controller-manager",
          operation: "Update",
          fieldsType: "FieldsV1",
          fieldsV1: { "f:spec": { "f:replicas": {} } },
        },
      ],
    };
  }
  async setClusterReplicas(cluster: ChatCluster, replicas: number) {
    const c = this.clusters.get(`${cluster.metadata.namespace}/${cluster.metadata.name}`);
    if (!c) throw Object.assign(new Error("not found"), { code: 404 });
    this.clusterReplicaWrites.push(replicas);
    c.spec.replicas = replicas;
    c.metadata.generation = (c.metadata.generation ?? 1) + 1;
  }
  /** The Secrets minimalSpec names, with the default keys. */
  secrets = new Map<string, Record<string, string>>([
    ["chat/rabbitmq", { url: "amqp://x" }],
    ["chat/redis", { url: "redis://x" }],
    ["chat/mongodb", { url: "mongodb://x" }],
    ["chat/jwt", { secret: "x".repeat(32) }],
  ]);
  async secretKeys(ns: string, name: string) {
    const s = this.secrets.get(`${ns}/${name}`);
    return s ? Object.keys(s) : undefined;
  }
  async remove(ref: ObjectRef) {
    const k = FakeApi.key(ref.kind, ref.namespace, ref.name);
    this.removed.push(k);
    return this.objects.delete(k);
  }
  async getDeployment(ns: string, name: string) {
    return this.objects.get(FakeApi.key("Deployment", ns, name)) as V1Deployment | undefined;
  }
  async listPods(ns: string) {
    return this.pods.filter((p) => p.metadata?.namespace === ns);
  }
  async getConfigMap(ns: string, name: string) {
    return this.objects.get(FakeApi.key("ConfigMap", ns, name)) as V1ConfigMap | undefined;
  }
  async patchConfigMapData(ns: string, name: string, data: Record<string, string>, resourceVersion: string) {
    const cm = this.objects.get(FakeApi.key("ConfigMap", ns, name)) as V1ConfigMap | undefined;
    if (!cm) throw Object.assign(new Error("not found"), { code: 404 });
    if (cm.metadata?.resourceVersion !== resourceVersion)
      throw Object.assign(new Error("conflict"), { code: 409 });
    cm.data = { ...(cm.data ?? {}), ...data };
    cm.metadata = { ...cm.metadata, resourceVersion: String(this.rv++) };
  }
  async applyStatus(cluster: ChatCluster, status: ChatClusterStatus) {
    this.statusWrites++;
    const c = this.clusters.get(`${cluster.metadata.namespace}/${cluster.metadata.name}`);
    if (c) c.status = structuredClone(status);
  }
  async setFinalizers(cluster: ChatCluster, finalizers: string[]) {
    const c = this.clusters.get(`${cluster.metadata.namespace}/${cluster.metadata.name}`);
    if (c) c.metadata.finalizers = [...finalizers];
  }
  /** Marks the Deployment rolled out: status mirrors spec. */
  rollOut(ns: string, name: string) {
    const d = this.objects.get(FakeApi.key("Deployment", ns, name)) as V1Deployment | undefined;
    if (!d?.spec) return;
    const n = d.spec.replicas ?? 1;
    d.metadata = { ...d.metadata, generation: 1 };
    d.status = {
      observedGeneration: 1,
      replicas: n,
      updatedReplicas: n,
      readyReplicas: n,
      availableReplicas: n,
    };
  }
}

export function pod(
  name: string,
  o: { ready?: boolean; connections?: number; terminating?: boolean } = {},
): V1Pod {
  return {
    metadata: {
      name,
      namespace: "chat",
      labels: { "app.kubernetes.io/instance": "demo" },
      ...(o.connections !== undefined
        ? { annotations: { "vibetalk.io/connections": String(o.connections) } }
        : {}),
      ...(o.terminating ? { deletionTimestamp: new Date() } : {}),
    },
    status: {
      phase: "Running",
      conditions: [{ type: "Ready", status: o.ready === false ? "False" : "True" }],
    },
  };
}

export interface RecordedEvent {
  type: string;
  reason: string;
  note: string;
}

export function fakeDeps(api: FakeApi, topology?: TopologyCleaner) {
  const events: RecordedEvent[] = [];
  const recorder: EventRecorder = {
    record: (_c, type, reason, _a, note) => events.push({ type, reason, note }),
  };
  const cleaned: string[] = [];
  const deps: ReconcilerDeps = {
    api,
    events: recorder,
    connections: createPodAnnotationConnectionSource(),
    topology: topology ?? { clean: async (c) => void cleaned.push(c.metadata.name) },
    metrics: createMetrics({ defaultMetrics: false }),
    log: pino({ level: "silent" }),
  };
  return { deps, events, cleaned };
}
