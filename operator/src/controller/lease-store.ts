/** LeaseStore on a coordination.k8s.io/v1 Lease. */
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from "@kubernetes/client-node";
import { isNotFound } from "./errors.js";
import type { LeaseRecord, LeaseStore } from "./leader.js";

const toDate = (v: unknown): Date => (v instanceof Date ? v : new Date(typeof v === "string" ? v : 0));

export function createKubeLeaseStore(kc: KubeConfig, namespace: string, name: string): LeaseStore {
  const api = kc.makeApiClient(CoordinationV1Api);
  const body = (r: LeaseRecord, resourceVersion?: string): V1Lease => ({
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name, namespace, ...(resourceVersion ? { resourceVersion } : {}) },
    spec: {
      holderIdentity: r.holderIdentity,
      leaseDurationSeconds: r.leaseDurationSeconds,
      acquireTime: new V1MicroTime(r.acquireTime.getTime()),
      renewTime: new V1MicroTime(r.renewTime.getTime()),
      leaseTransitions: r.leaseTransitions,
    },
  });
  return {
    async get() {
      let lease: V1Lease;
      try {
        lease = await api.readNamespacedLease({ name, namespace });
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
      const s = lease.spec ?? {};
      return {
        resourceVersion: lease.metadata?.resourceVersion ?? "",
        record: {
          holderIdentity: s.holderIdentity ?? "",
          leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
          acquireTime: toDate(s.acquireTime),
          renewTime: toDate(s.renewTime),
          leaseTransitions: s.leaseTransitions ?? 0,
        },
      };
    },
    async create(record) {
      await api.createNamespacedLease({ namespace, body: body(record) });
    },
    async update(record, resourceVersion) {
      await api.replaceNamespacedLease({ name, namespace, body: body(record, resourceVersion) });
    },
  };
}
