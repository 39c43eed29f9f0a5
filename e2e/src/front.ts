// nginx in front of a local cluster's chat-nodes, following the chat Service's EndpointSlices as an
// ingress controller does: ready endpoints take new sessions, terminating ones that still serve keep
// theirs (docs/nginx.md). `npm run up` and the e2e suites run this same code.
import { startNginx, waitFor, type NginxAffinity, type NginxService } from "@vibetalk/testkit";
import type { VibeTalkCluster } from "./cluster.js";

export interface FrontProxy {
  nginx: NginxService;
  url: string;
  /** The upstreams nginx has now. */
  current(): { ready: string[]; draining: string[] };
  /** Waits until nginx's upstreams satisfy `ok` (they follow the EndpointSlices every `intervalMs`). */
  waitFor(
    what: string,
    ok: (u: { ready: string[]; draining: string[] }) => boolean,
    timeoutMs?: number,
  ): Promise<void>;
  stop(): Promise<void>;
}

export interface FrontProxyOptions {
  port: number;
  affinity?: NginxAffinity;
  /** How often the EndpointSlices are read (default 2000 ms). */
  intervalMs?: number;
  log?: (message: string) => void;
}

export async function startFrontProxy(cluster: VibeTalkCluster, o: FrontProxyOptions): Promise<FrontProxy> {
  const log = o.log ?? (() => undefined);
  let current = await cluster.chatEndpointStates();
  const nginx = await startNginx({
    port: o.port,
    upstreams: current.ready,
    draining: current.draining,
    ...(o.affinity ? { affinity: o.affinity } : {}),
  });
  const key = (u: { ready: string[]; draining: string[] }) => `${u.ready.join()}|${u.draining.join()}`;
  let stopped = false;
  let busy = false;
  const follow = setInterval(() => {
    if (busy || stopped) return;
    busy = true;
    void cluster
      .chatEndpointStates()
      .then(async (next) => {
        if (key(next) === key(current) || stopped) return;
        await nginx.setUpstreams(next.ready, next.draining);
        current = next;
        log(
          `nginx upstreams: ${next.ready.join(", ") || "(none ready)"}` +
            (next.draining.length > 0 ? `; draining ${next.draining.join(", ")}` : ""),
        );
      })
      .catch((err: unknown) =>
        log(`nginx upstreams not updated: ${err instanceof Error ? err.message : err}`),
      )
      .finally(() => {
        busy = false;
      });
  }, o.intervalMs ?? 2000);
  return {
    nginx,
    url: nginx.url,
    current: () => current,
    waitFor: async (what, ok, timeoutMs = 60_000) => {
      await waitFor(
        `nginx's upstreams: ${what}`,
        async () => ok(current),
        timeoutMs,
        100,
        async () => `now ${key(current)}`,
      );
    },
    stop: async () => {
      stopped = true;
      clearInterval(follow);
      await nginx.stop();
    },
  };
}
