/** ClusterApi on the real API server through @kubernetes/client-node. */
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
  type ObjectCache,
  type V1Pod,
} from "@kubernetes/client-node";
import { applyDefaults } from "../api/schema.js";
import {
  API_VERSION,
  chatClusterSpecSchema,
  GROUP,
  KIND,
  PLURAL,
  VERSION,
  type ChatCluster,
  type ChatClusterSpec,
} from "../api/v1alpha1.js";
import type { ObjectRef } from "../resources/index.js";
import { FIELD_MANAGER } from "../resources/meta.js";
import { isNotFound } from "./errors.js";
import type { ClusterApi } from "./ports.js";

async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Parses `k=v,k2=v2` (the only selector form the operator uses). */
export function matchesSelector(labels: Record<string, string> | undefined, selector: string): boolean {
  return selector
    .split(",")
    .filter((s) => s !== "")
    .every((term) => {
      const [k, v] = term.split("=");
      return k !== undefined && labels?.[k] === v;
    });
}

/** The ChatCluster as the operator works with it: spec defaults filled in (an old CRD may lack them). */
export function normalizeCluster(raw: unknown): ChatCluster {
  const obj = raw as ChatCluster;
  return {
    ...obj,
    apiVersion: API_VERSION,
    kind: KIND,
    spec: applyDefaults(chatClusterSpecSchema.json, obj.spec ?? {}) as ChatClusterSpec,
  };
}

export interface KubeClusterApiOptions {
  /** Pods from an informer; used instead of a LIST when synced. */
  podCache?: ObjectCache<V1Pod> & { synced(): boolean };
}

const unserved = (err: unknown) =>
  err instanceof Error && err.message.startsWith("Unrecognized API version and kind");

export function createKubeClusterApi(kc: KubeConfig, options: KubeClusterApiOptions = {}): ClusterApi {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const ssa = setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply);
  const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
  const crd = { group: GROUP, version: VERSION, plural: PLURAL };

  return {
    async getCluster(namespace, name) {
      const raw: unknown = await orUndefined(custom.getNamespacedCustomObject({ ...crd, namespace, name }));
      return raw === undefined ? undefined : normalizeCluster(raw);
    },
    async apply(obj: KubernetesObject, o = {}) {
      const manager = o.fieldManager ?? FIELD_MANAGER;
      await objects.patch(obj, undefined, undefined, manager, true, PatchStrategy.ServerSideApply);
    },
    async remove(ref: ObjectRef) {
      try {
        await objects.delete({
          apiVersion: ref.apiVersion,
          kind: ref.kind,
          metadata: { name: ref.name, namespace: ref.namespace },
        });
        return true;
      } catch (err) {
        if (isNotFound(err) || unserved(err)) return false;
        throw err;
      }
    },
    getDeployment: (namespace, name) => orUndefined(apps.readNamespacedDeployment({ namespace, name })),
    async listPods(namespace, labelSelector, o = {}) {
      const cache = options.podCache;
      if (!o.fresh && cache?.synced()) {
        return cache.list(namespace).filter((p) => matchesSelector(p.metadata?.labels, labelSelector));
      }
      return (await core.listNamespacedPod({ namespace, labelSelector })).items;
    },
    getConfigMap: (namespace, name) => orUndefined(core.readNamespacedConfigMap({ namespace, name })),
    async patchConfigMapData(namespace, name, data, resourceVersion) {
      await core.patchNamespacedConfigMap(
        { namespace, name, body: { metadata: { resourceVersion }, data } },
        merge,
      );
    },
    async applyStatus(cluster, status) {
      const { name, namespace, uid } = cluster.metadata;
      const body = { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace, uid }, status };
      await custom.patchNamespacedCustomObjectStatus(
        { ...crd, namespace, name, body, fieldManager: FIELD_MANAGER, force: true },
        ssa,
      );
    },
    async setClusterReplicas(cluster, replicas) {
      const { name, namespace, resourceVersion } = cluster.metadata;
      await custom.patchNamespacedCustomObject(
        {
          ...crd,
          namespace,
          name,
          body: { metadata: { resourceVersion }, spec: { replicas } },
          fieldManager: FIELD_MANAGER,
        },
        merge,
      );
    },
    async secretKeys(namespace, name) {
      const secret = await orUndefined(core.readNamespacedSecret({ namespace, name }));
      return secret ? Object.keys({ ...(secret.data ?? {}), ...(secret.stringData ?? {}) }) : undefined;
    },
    async setFinalizers(cluster, finalizers) {
      const { name, namespace, uid } = cluster.metadata;
      const body = { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace, uid, finalizers } };
      await custom.patchNamespacedCustomObject(
        { ...crd, namespace, name, body, fieldManager: FIELD_MANAGER, force: true },
        ssa,
      );
    },
  };
}
