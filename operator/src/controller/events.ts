/**
 * EventRecorder on events.k8s.io/v1. An identical event (same object, reason and note) within
 * `dedupeMs` is dropped, so a retry loop does not flood the object's event list.
 */
import { EventsV1Api, V1MicroTime, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { ChatCluster } from "../api/v1alpha1.js";
import { errorMessage } from "./errors.js";
import type { EventRecorder, EventType } from "./ports.js";

export const REPORTING_CONTROLLER = "vibetalk.io/operator";

export interface EventRecorderOptions {
  kc: KubeConfig;
  /** This operator instance (POD_NAME). */
  instance: string;
  log: Logger;
  dedupeMs?: number;
}

export function createKubeEventRecorder(o: EventRecorderOptions): EventRecorder {
  const api = o.kc.makeApiClient(EventsV1Api);
  const recent = new Map<string, number>();
  const dedupeMs = o.dedupeMs ?? 5 * 60_000;
  return {
    record(cluster: ChatCluster, type: EventType, reason: string, action: string, note: string) {
      const { name, namespace, uid } = cluster.metadata;
      o.log.info({ cluster: `${namespace}/${name}`, event: reason, type }, note);
      const key = `${uid}|${reason}|${note}`;
      const now = Date.now();
      if ((recent.get(key) ?? 0) > now - dedupeMs) return;
      recent.set(key, now);
      if (recent.size > 5000) for (const [k, at] of recent) if (at < now - dedupeMs) recent.delete(k);
      const body = {
        apiVersion: "events.k8s.io/v1",
        kind: "Event",
        metadata: { generateName: `${name}-`, namespace },
        eventTime: new V1MicroTime(now),
        reportingController: REPORTING_CONTROLLER,
        reportingInstance: o.instance,
        action,
        reason,
        type,
        note: note.slice(0, 1024),
        regarding: {
          apiVersion: cluster.apiVersion,
          kind: cluster.kind,
          name,
          namespace,
          uid,
          ...(cluster.metadata.resourceVersion ? { resourceVersion: cluster.metadata.resourceVersion } : {}),
        },
      };
      api.createNamespacedEvent({ namespace, body }).catch((err: unknown) => {
        o.log.warn({ cluster: `${namespace}/${name}`, err: errorMessage(err) }, "could not record event");
      });
    },
  };
}
