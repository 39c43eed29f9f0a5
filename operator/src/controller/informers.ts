/**
 * Supervised informers: @kubernetes/client-node's ListWatch re-lists on 410 Gone and re-watches on
 * timeouts by itself, but after any other error it stops for good. The supervisor restarts it with
 * exponential backoff and reports its health for /readyz and the metrics.
 */
import {
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { errorMessage } from "./errors.js";

export type InformerEvent = "add" | "update" | "delete";

export interface SupervisedInformerOptions<T extends KubernetesObject> {
  name: string;
  kc: KubeConfig;
  /** Watch path, e.g. /api/v1/pods or /api/v1/namespaces/x/pods. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  onEvent: (verb: InformerEvent, obj: T) => void;
  onHealth?: (healthy: boolean) => void;
  log?: Logger;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface SupervisedInformer<T extends KubernetesObject> extends ObjectCache<T> {
  readonly name: string;
  /** Listed at least once and watching now. */
  healthy(): boolean;
  /** Listed at least once (the cache has been filled). */
  synced(): boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createSupervisedInformer<T extends KubernetesObject>(
  o: SupervisedInformerOptions<T>,
): SupervisedInformer<T> {
  const informer: Informer<T> & ObjectCache<T> = makeInformer(o.kc, o.path, o.list, o.labelSelector);
  const minBackoff = o.minBackoffMs ?? 1_000;
  const maxBackoff = o.maxBackoffMs ?? 30_000;
  let healthy = false;
  let synced = false;
  let stopped = false;
  let backoff = minBackoff;
  let errorsThisStart = 0;
  let restartTimer: NodeJS.Timeout | undefined;

  const setHealthy = (v: boolean) => {
    if (healthy !== v) o.onHealth?.(v);
    healthy = v;
  };

  const attempt = async (): Promise<void> => {
    errorsThisStart = 0;
    await informer.start();
    if (stopped || errorsThisStart > 0) return;
    synced = true;
    backoff = minBackoff;
    setHealthy(true);
  };

  const scheduleRestart = () => {
    if (stopped || restartTimer) return;
    const delay = backoff;
    backoff = Math.min(maxBackoff, backoff * 2);
    o.log?.warn({ informer: o.name, retryInMs: delay }, "informer stopped; restarting");
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      void attempt();
    }, delay);
  };

  informer.on("add", (obj) => o.onEvent("add", obj));
  informer.on("update", (obj) => o.onEvent("update", obj));
  informer.on("delete", (obj) => o.onEvent("delete", obj));
  informer.on("error", (err?: unknown) => {
    if (stopped) return;
    errorsThisStart++;
    setHealthy(false);
    o.log?.warn({ informer: o.name, err: errorMessage(err) }, "informer error");
    scheduleRestart();
  });

  return {
    name: o.name,
    healthy: () => healthy,
    synced: () => synced,
    get: (name, namespace) => informer.get(name, namespace),
    list: (namespace) => informer.list(namespace),
    async start() {
      stopped = false;
      await attempt();
    },
    async stop() {
      stopped = true;
      if (restartTimer) clearTimeout(restartTimer);
      restartTimer = undefined;
      setHealthy(false);
      await informer.stop();
    },
  };
}
