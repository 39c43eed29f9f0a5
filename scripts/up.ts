// The local VibeTalk cluster: a real single-node Kubernetes (control plane, containerd, kubelet, kube-proxy),
// Redis, RabbitMQ and FerretDB, the operator installed from manifests/ and a ChatCluster whose chat-node pods
// run from the images scripts/images builds, with nginx in front following the chat Service's EndpointSlices.
// Run through `npm run up` (scripts/up runs scripts/setup and scripts/images first). Ctrl-C stops it.
import { startVibeTalkCluster } from "@vibetalk/e2e";
import { startNginx } from "@vibetalk/testkit";

const PORT = Number(process.env.VIBETALK_PORT ?? 8080);
const REPLICAS = Number(process.env.VIBETALK_NODES ?? 2);

function log(message: string): void {
  console.log(`[up ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const cluster = await startVibeTalkCluster({ replicas: REPLICAS, partitions: 64, drainSeconds: 10, log });
  const upstreams = (): Promise<string[]> => cluster.chatEndpoints();
  let current = await upstreams();
  const nginx = await startNginx({ port: PORT, upstreams: current });
  // nginx's upstreams follow the chat Service's ready endpoints (ip_hash keeps long-polling sessions sticky).
  const follow = setInterval(() => {
    void upstreams().then(async (next) => {
      if (next.join() === current.join()) return;
      current = next;
      await nginx.setUpstreams(next);
      log(`nginx upstreams: ${next.join(", ") || "(none ready)"}`);
    });
  }, 2000);
  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log("stopping…");
    clearInterval(follow);
    await nginx.stop();
    await cluster.stop();
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown());
  process.once("SIGTERM", () => void shutdown());
  log(
    `kubectl: KUBECONFIG=${cluster.cp.kubeconfigPath} ~/.cache/vibetalk/bin/current/kubectl get chatclusters,pods -A -o wide`,
  );
  log(`RabbitMQ management: ${cluster.rabbit.managementUrl ?? "off"}`);
  log(
    `ready in ${((Date.now() - started) / 1000).toFixed(1)} s — open ${nginx.url} in a browser (Ctrl-C stops)`,
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
