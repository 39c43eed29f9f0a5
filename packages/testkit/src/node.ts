/**
 * A real Kubernetes node on this machine: Debian's containerd with the CRI plugin, the real kubelet and
 * kube-proxy built from the pinned Kubernetes module, pods on a CNI bridge with addresses of their own, and
 * VibeTalk's images imported from the archives scripts/images writes. See docs/development.md.
 * With `networkPolicy: true`, kube-router's network policy controller alone enforces NetworkPolicy on the
 * node (iptables and ipsets; no routing, no service proxy, no CNI of its own).
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ControlPlane } from "./controlplane.js";
import type { HostNetwork } from "./host-network.js";
import { freePort } from "./ports.js";
import { ManagedProcess, run, runCommand, waitUntil } from "./process.js";
import { cacheDir, systemBinary, toolPath } from "./tools.js";
import { waitFor } from "./wait.js";

export const PAUSE_IMAGE = "localhost/vibetalk/pause:3.10";

export interface ImageArchive {
  ref: string;
  archive: string;
}

export interface KubeNode {
  name: string;
  /** containerd's socket (ctr --address). */
  containerdSocket: string;
  /** Runs `ctr` against this node's containerd in the CRI's namespace. */
  ctr(args: string[]): Promise<string>;
  /** The references of the images imported into the node. */
  images: string[];
  logTail(component: "containerd" | "kubelet" | "kube-proxy" | "kube-router", lines?: number): string;
  /** Whether kube-router enforces NetworkPolicy on this node. */
  networkPolicy: boolean;
  stop(): Promise<void>;
}

/**
 * The images scripts/images built, from its manifest (VIBETALK_IMAGES_MANIFEST overrides the path); a clear
 * message when they are missing.
 */
export function builtImages(): ImageArchive[] {
  const manifest = process.env.VIBETALK_IMAGES_MANIFEST ?? join(cacheDir(), "images", "images.json");
  if (!existsSync(manifest)) {
    throw new Error(`no container images at ${manifest}: run scripts/images (it builds VibeTalk's images)`);
  }
  const list = JSON.parse(readFileSync(manifest, "utf8")) as ImageArchive[] | { images: ImageArchive[] };
  const images = Array.isArray(list) ? list : list.images;
  for (const i of images) {
    if (!existsSync(i.archive)) throw new Error(`image archive ${i.archive} is missing: run scripts/images`);
  }
  return images;
}

function containerdConfig(dir: string): string {
  return `version = 2
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "${dir}/containerd.sock"

[ttrpc]
  address = "${dir}/containerd.ttrpc.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # This VM forbids lowering oom_score_adj, and the CRI asks -998 for every sandbox: never ask below
  # containerd's own score (0), as rootless set-ups do.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "${systemBinary(["/usr/sbin/runc", "/usr/bin/runc"], "runc")}"
        Root = "${dir}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${systemBinary(["/usr/lib/cni/bridge"], "containernetworking-plugins").replace(/\/bridge$/, "")}"
    conf_dir = "${dir}/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".image_decryption]
    key_model = "node"
`;
}

/** bridge + host-local: routes to the pod and Service ranges only, so a pod reaches nothing off the machine. */
function cniConfig(dir: string, net: HostNetwork): string {
  return JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "vibetalk",
      plugins: [
        {
          type: "bridge",
          bridge: net.bridge,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: "host-local",
            dataDir: `${dir}/cni/ipam`,
            ranges: [[{ subnet: net.podCidr, gateway: net.gateway, rangeStart: "10.244.0.10" }]],
            routes: [{ dst: net.clusterCidr }, { dst: net.serviceCidr }],
          },
        },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(dir: string, cp: ControlPlane, net: HostNetwork, ports: number[]): string {
  const [port, healthz] = ports;
  return JSON.stringify(
    {
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      address: net.gateway,
      port,
      readOnlyPort: 0,
      healthzBindAddress: "127.0.0.1",
      healthzPort: healthz,
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: true },
        x509: { clientCAFile: cp.node?.clientCaFile },
      },
      authorization: { mode: "Webhook" },
      containerRuntimeEndpoint: `unix://${dir}/containerd.sock`,
      cgroupDriver: "cgroupfs",
      // This VM has cgroup v1 and swap; the node runs without QoS cgroups or node-allocatable enforcement.
      failCgroupV1: false,
      failSwapOn: false,
      cgroupsPerQOS: false,
      enforceNodeAllocatable: [],
      podLogsDir: `${dir}/logs`,
      // An empty resolv.conf: pods have no DNS server, so no name lookup leaves the machine.
      resolvConf: `${dir}/resolv.conf`,
      serializeImagePulls: false,
      // Images are imported, never pulled: never collect them.
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      evictionHard: { "memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%" },
      nodeStatusUpdateFrequency: "4s",
      nodeStatusReportFrequency: "10s",
      syncFrequency: "10s",
      fileCheckFrequency: "20s",
      maxPods: 110,
      rotateCertificates: false,
      serverTLSBootstrap: false,
      protectKernelDefaults: false,
      shutdownGracePeriod: "0s",
    },
    null,
    2,
  );
}

function kubeProxyConfig(cp: ControlPlane, net: HostNetwork, ports: number[]): string {
  const [healthz, metrics] = ports;
  return JSON.stringify(
    {
      apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
      kind: "KubeProxyConfiguration",
      mode: "iptables",
      clusterCIDR: net.clusterCidr,
      bindAddress: net.gateway,
      hostnameOverride: cp.node?.nodeName,
      healthzBindAddress: `127.0.0.1:${healthz}`,
      metricsBindAddress: `127.0.0.1:${metrics}`,
      clientConnection: { kubeconfig: cp.node?.proxyKubeconfig },
      // Service traffic between two pods of the bridge comes back through the host.
      iptables: { masqueradeAll: true, syncPeriod: "30s", minSyncPeriod: "0s" },
      conntrack: { maxPerCore: 0, min: 0 },
      nodePortAddresses: [`${net.gateway}/32`],
    },
    null,
    2,
  );
}

/**
 * kube-router v2 with only its firewall on: it watches pods, namespaces and NetworkPolicies and keeps
 * per-pod iptables chains (KUBE-POD-FW-*, KUBE-NWPLCY-*) and ipsets (KUBE-SRC-*, KUBE-DST-*) in step.
 * It reads the cluster with the admin credentials (a copy in the node folder, so that the clean-up of a
 * killed run finds the process by its command line). Its health port would listen on every interface,
 * so it is off; the controller is up once it has hooked its chains into the built-in ones. Traffic
 * whose source is the node itself (probes, the tests on the host) is always allowed by it.
 */
async function startKubeRouter(
  cp: ControlPlane,
  dir: string,
  start: (name: string, command: string, args: string[]) => ManagedProcess,
): Promise<void> {
  const kubeconfig = join(dir, "kube-router.kubeconfig");
  await writeFile(kubeconfig, readFileSync(cp.kubeconfigPath));
  const router = start("kube-router", toolPath("kube-router"), [
    `--kubeconfig=${kubeconfig}`,
    `--hostname-override=${cp.node?.nodeName ?? ""}`,
    "--run-firewall=true",
    "--run-router=false",
    "--run-service-proxy=false",
    "--enable-cni=false",
    "--enable-ipv6=false",
    "--service-cluster-ip-range=10.96.0.0/16",
    "--health-port=0",
    "--metrics-port=0",
    "--iptables-sync-period=1m",
    "--v=1",
  ]);
  await waitUntil(
    "kube-router (its chains in FORWARD)",
    router,
    async () =>
      (await runCommand("iptables", ["-w", "-S", "FORWARD"])).stdout.includes("KUBE-ROUTER-FORWARD"),
    60_000,
    250,
  );
}

async function sockReady(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isSocket();
  } catch {
    return false;
  }
}

/**
 * Starts containerd, imports the images, starts the kubelet and kube-proxy, and waits until the Node is
 * Ready. The control plane must have been started with `nodeAddress: net.gateway`.
 */
export async function startNode(
  cp: ControlPlane,
  net: HostNetwork,
  options: {
    images?: ImageArchive[];
    log?: (m: string) => void;
    /** Enforce NetworkPolicy with kube-router's network policy controller (default false). */
    networkPolicy?: boolean;
  } = {},
): Promise<KubeNode> {
  const creds = cp.node;
  if (!creds) throw new Error("startNode: the control plane was started without nodeAddress");
  const log = options.log ?? (() => undefined);
  const dir = net.dir;
  const procs: ManagedProcess[] = [];
  const byName = new Map<string, ManagedProcess>();
  const start = (name: string, command: string, args: string[]): ManagedProcess => {
    const p = new ManagedProcess({ name, command, args, logFile: join(dir, `${name}.log`) });
    procs.push(p);
    byName.set(name, p);
    return p;
  };
  const stopAll = async (): Promise<void> => {
    for (const p of [...procs].reverse()) await p.stop(5_000);
  };
  try {
    const images = options.images ?? builtImages();
    for (const sub of ["cni/net.d", "cni/ipam", "logs", "kubelet", "containerd"]) {
      await mkdir(join(dir, sub), { recursive: true });
    }
    await writeFile(join(dir, "resolv.conf"), "");
    await writeFile(join(dir, "containerd.toml"), containerdConfig(dir));
    await writeFile(join(dir, "cni/net.d/10-vibetalk.conflist"), cniConfig(dir, net));
    const socket = join(dir, "containerd.sock");
    const containerd = start("containerd", systemBinary(["/usr/bin/containerd"], "containerd"), [
      "--config",
      join(dir, "containerd.toml"),
    ]);
    await waitUntil("containerd", containerd, () => sockReady(socket), 30_000, 50);
    const ctrBinary = systemBinary(["/usr/bin/ctr"], "containerd");
    const ctr = (args: string[]): Promise<string> =>
      run(ctrBinary, ["--address", socket, "--namespace", "k8s.io", ...args], { timeoutMs: 300_000 });
    const importStart = Date.now();
    for (const image of images) await ctr(["images", "import", image.archive]);
    const listed = await ctr(["images", "ls", "-q"]);
    for (const image of images) {
      if (!listed.split("\n").includes(image.ref)) {
        throw new Error(
          `image ${image.ref} is not in containerd after importing ${image.archive}:\n${listed}`,
        );
      }
    }
    log(`imported ${images.length} images in ${((Date.now() - importStart) / 1000).toFixed(1)} s`);

    const kubeletPorts = [await freePort(), await freePort()];
    await writeFile(join(dir, "kubelet.json"), kubeletConfig(dir, cp, net, kubeletPorts));
    const kubelet = start("kubelet", toolPath("kubelet"), [
      `--config=${join(dir, "kubelet.json")}`,
      `--kubeconfig=${creds.kubeletKubeconfig}`,
      `--root-dir=${join(dir, "kubelet")}`,
      `--cert-dir=${join(dir, "kubelet", "pki")}`,
      `--node-ip=${net.gateway}`,
      `--hostname-override=${creds.nodeName}`,
      "--v=1",
    ]);
    const proxyPorts = [await freePort(), await freePort()];
    await writeFile(join(dir, "kube-proxy.json"), kubeProxyConfig(cp, net, proxyPorts));
    start("kube-proxy", toolPath("kube-proxy"), [`--config=${join(dir, "kube-proxy.json")}`, "--v=1"]);

    const nodeReady = async (): Promise<boolean> => {
      const out = await cp.kubectl([
        "get",
        "node",
        creds.nodeName,
        "-o",
        'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
      ]);
      return out.trim() === "True";
    };
    await waitUntil("kubelet (node Ready)", kubelet, nodeReady, 90_000, 250);
    // Nothing schedules onto a node whose not-ready taint is still there.
    await waitFor(
      "the node's not-ready taint to go",
      async () =>
        !(await cp.kubectl(["get", "node", creds.nodeName, "-o", "jsonpath={.spec.taints}"])).includes(
          "not-ready",
        ),
      60_000,
      250,
    );
    // kube-router finds itself by the Node object, so only once the kubelet has registered it.
    const networkPolicy = options.networkPolicy ?? false;
    if (networkPolicy) await startKubeRouter(cp, dir, start);
    return {
      name: creds.nodeName,
      containerdSocket: socket,
      ctr,
      images: images.map((i) => i.ref),
      logTail: (component, lines) => byName.get(component)?.logTail(lines) ?? `(no ${component})`,
      networkPolicy,
      stop: stopAll,
    };
  } catch (err) {
    const tails = ["containerd", "kubelet", "kube-proxy", "kube-router"]
      .map((n) => `--- ${n} ---\n${byName.get(n)?.logTail(20) ?? "(not started)"}`)
      .join("\n");
    await stopAll();
    if (err instanceof Error) err.message += `\n${tails}`;
    throw err;
  }
}
