// The local VibeTalk cluster: a real single-node Kubernetes (control plane, containerd, kubelet, kube-proxy),
// Redis, RabbitMQ and FerretDB, the operator installed from manifests/ and a ChatCluster whose chat-node pods
// run from the images scripts/images builds, with nginx in front following the chat Service's EndpointSlices.
// Run through `npm run up` (scripts/up runs scripts/setup and scripts/images first). Ctrl-C stops it.
import { startFrontProxy, startVibeTalkCluster } from "@vibetalk/e2e";

const PORT = Number(process.env.VIBETALK_PORT ?? 8080);
const REPLICAS = Number(process.env.VIBETALK_NODES ?? 2);

function log(message: string): void {
  console.log(`[up ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const cluster = await startVibeTalkCluster({ replicas: REPLICAS, partitions: 64, drainSeconds: 10, log });
  // nginx follows the chat Service's EndpointSlices: ready pods take new sessions, draining ones keep
  // theirs (the cookie affinity of docs/nginx.md keeps long-polling sessions on their chat-node).
  const front = await startFrontProxy(cluster, { port: PORT, log });
  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log("stopping…");
    await front.stop();
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
    `ready in ${((Date.now() - started) / 1000).toFixed(1)} s — open ${front.url} in a browser (Ctrl-C stops)`,
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
