import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { makePki } from "./pki.js";
import { freePort } from "./ports.js";
import { ManagedProcess, run, tcpOpen, tempDir, waitUntil } from "./process.js";
import { toolPath } from "./tools.js";
import { waitFor } from "./wait.js";

export interface ControlPlaneOptions {
  /** Fake kwok nodes to register (default 1). Their pods get 10.0.0.x addresses: never dial them. */
  nodes?: number;
  /** Seconds between HPA syncs in the controller manager (default 5). */
  hpaSyncSeconds?: number;
  /**
   * The node's bridge gateway (acquireHostNetwork): the API server binds and advertises there, so pods
   * reach it through the `kubernetes` Service, and it calls the kubelet with a client certificate.
   */
  nodeAddress?: string;
}

/** Credentials of a real node's components, made when `nodeAddress` is set. */
export interface NodeCredentials {
  nodeName: string;
  /** The kubelet as system:node:<nodeName> (the Node authorizer's rules). */
  kubeletKubeconfig: string;
  /** kube-proxy as system:kube-proxy (bound to system:node-proxier by default). */
  proxyKubeconfig: string;
  /** The CA whose client certificates the kubelet accepts (the API server's among them). */
  clientCaFile: string;
}

export interface ControlPlane {
  server: string;
  /** Admin kubeconfig (token auth, system:masters). */
  kubeconfigPath: string;
  token: string;
  dir: string;
  /** CA that signed the front-proxy client certificate; also the caBundle to trust for nothing else. */
  caCertPath: string;
  /** Present when the control plane was started for a real node. */
  node?: NodeCredentials;
  /** Names of the kwok nodes. */
  nodes: string[];
  kubectl(args: string[], options?: { input?: string }): Promise<string>;
  stop(): Promise<void>;
  logTail(component: string): string;
}

function apiReady(server: string, token: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      `${server}/readyz`,
      { headers: { Authorization: `Bearer ${token}` }, rejectUnauthorized: false },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.once("error", () => resolve(false));
    req.end();
  });
}

export const NODE_NAME = "vibetalk-node";

function kubeconfigYaml(server: string, token: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: vibetalk-test",
    "  cluster:",
    `    server: ${server}`,
    "    insecure-skip-tls-verify: true",
    "users:",
    "- name: admin",
    "  user:",
    `    token: ${token}`,
    "contexts:",
    "- name: vibetalk-test",
    "  context: {cluster: vibetalk-test, user: admin}",
    "current-context: vibetalk-test",
    "",
  ].join("\n");
}

function fakeNode(name: string): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
      labels: {
        type: "kwok",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
      },
    },
    status: {
      allocatable: { cpu: "32", memory: "256Gi", pods: "110" },
      capacity: { cpu: "32", memory: "256Gi", pods: "110" },
    },
  });
}

/**
 * A real Kubernetes control plane on loopback: etcd, kube-apiserver (service-account keys, RBAC, aggregation
 * layer), kube-controller-manager, kube-scheduler and kwok managing fake nodes.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const dir = await tempDir("k8s");
  const procs: ManagedProcess[] = [];
  const byName = new Map<string, ManagedProcess>();
  const start = (name: string, command: string, args: string[]): ManagedProcess => {
    const p = new ManagedProcess({ name, command, args, logFile: join(dir.path, `${name}.log`) });
    procs.push(p);
    byName.set(name, p);
    return p;
  };
  const stopAll = async (): Promise<void> => {
    for (const p of [...procs].reverse()) await p.stop(5_000);
  };
  try {
    const pki = await makePki(dir.path);
    const [etcdClient, etcdPeer, apiPort, kwokPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const etcd = start("etcd", toolPath("etcd"), [
      `--data-dir=${join(dir.path, "etcd")}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      "--unsafe-no-fsync",
      "--log-level=warn",
    ]);
    await waitUntil("etcd", etcd, () => tcpOpen(etcdClient), 20_000, 50);
    const token = randomBytes(16).toString("hex");
    const kubeletToken = randomBytes(16).toString("hex");
    const proxyToken = randomBytes(16).toString("hex");
    await writeFile(
      join(dir.path, "tokens.csv"),
      [
        `${token},admin,admin,system:masters`,
        `${kubeletToken},system:node:${NODE_NAME},kubelet,system:nodes`,
        `${proxyToken},system:kube-proxy,kube-proxy`,
        "",
      ].join("\n"),
    );
    const host = options.nodeAddress ?? "127.0.0.1";
    await mkdir(join(dir.path, "certs"));
    const server = `https://${host}:${apiPort}`;
    const api = start("kube-apiserver", toolPath("kube-apiserver"), [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      `--bind-address=${host}`,
      `--advertise-address=${host}`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir.path, "certs")}`,
      `--token-auth-file=${join(dir.path, "tokens.csv")}`,
      "--authorization-mode=Node,RBAC",
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      "--service-cluster-ip-range=10.96.0.0/16",
      // With a real node the `kubernetes` Service gets the API server's address as its endpoint.
      `--endpoint-reconciler-type=${options.nodeAddress ? "lease" : "none"}`,
      ...(options.nodeAddress
        ? [
            "--kubelet-preferred-address-types=InternalIP",
            `--kubelet-client-certificate=${pki.kubeletClientCert}`,
            `--kubelet-client-key=${pki.kubeletClientKey}`,
          ]
        : []),
      `--client-ca-file=${pki.caCert}`,
      `--requestheader-client-ca-file=${pki.caCert}`,
      "--requestheader-allowed-names=front-proxy-client",
      "--requestheader-username-headers=X-Remote-User",
      "--requestheader-group-headers=X-Remote-Group",
      "--requestheader-extra-headers-prefix=X-Remote-Extra-",
      `--proxy-client-cert-file=${pki.frontProxyCert}`,
      `--proxy-client-key-file=${pki.frontProxyKey}`,
      "--allow-privileged=true",
      "--profiling=false",
    ]);
    await waitUntil("kube-apiserver", api, () => apiReady(server, token), 60_000, 100);
    const kubeconfigPath = join(dir.path, "admin.kubeconfig");
    await writeFile(kubeconfigPath, kubeconfigYaml(server, token));
    let node: NodeCredentials | undefined;
    if (options.nodeAddress) {
      node = {
        nodeName: NODE_NAME,
        kubeletKubeconfig: join(dir.path, "kubelet.kubeconfig"),
        proxyKubeconfig: join(dir.path, "kube-proxy.kubeconfig"),
        clientCaFile: pki.caCert,
      };
      await writeFile(node.kubeletKubeconfig, kubeconfigYaml(server, kubeletToken));
      await writeFile(node.proxyKubeconfig, kubeconfigYaml(server, proxyToken));
    }
    start("kube-controller-manager", toolPath("kube-controller-manager"), [
      `--kubeconfig=${kubeconfigPath}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      "--leader-elect=false",
      "--secure-port=0",
      `--service-account-private-key-file=${pki.serviceAccountKey}`,
      `--root-ca-file=${join(dir.path, "certs", "apiserver.crt")}`,
      "--use-service-account-credentials=false",
      `--horizontal-pod-autoscaler-sync-period=${options.hpaSyncSeconds ?? 5}s`,
      "--horizontal-pod-autoscaler-downscale-stabilization=15s",
      "--controllers=*",
    ]);
    start("kube-scheduler", toolPath("kube-scheduler"), [
      `--kubeconfig=${kubeconfigPath}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      "--leader-elect=false",
      "--secure-port=0",
    ]);
    // kwok only when fake nodes are wanted.
    if ((options.nodes ?? 1) > 0) {
      start("kwok", toolPath("kwok"), [
        `--kubeconfig=${kubeconfigPath}`,
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--manage-nodes-with-label-selector=",
        "--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom",
        "--disregard-status-with-label-selector=",
        "--cidr=10.0.0.1/24",
        "--node-ip=10.0.0.1",
        `--server-address=127.0.0.1:${kwokPort}`,
      ]);
    }
    const kubectlBinary = toolPath("kubectl");
    const kubectl = (args: string[], o: { input?: string } = {}): Promise<string> =>
      run(kubectlBinary, [`--kubeconfig=${kubeconfigPath}`, ...args], { timeoutMs: 120_000, ...o });
    const nodes = Array.from({ length: options.nodes ?? 1 }, (_, i) => `kwok-node-${i}`);
    for (const n of nodes) await kubectl(["create", "-f", "-"], { input: fakeNode(n) });
    return {
      server,
      kubeconfigPath,
      token,
      dir: dir.path,
      caCertPath: pki.caCert,
      ...(node ? { node } : {}),
      nodes,
      kubectl,
      logTail: (component) => byName.get(component)?.logTail() ?? `(no component ${component})`,
      stop: async () => {
        await stopAll();
        await dir.remove();
      },
    };
  } catch (err) {
    await stopAll();
    await dir.remove();
    throw err;
  }
}

/**
 * Waits until the API server serves a CRD (its Established condition True). `kubectl wait
 * --for=condition=Established` fails at once ("<nil> is of the type <nil>") when it reads the CRD
 * before the API server has written any condition, so this polls instead.
 */
export async function waitForCrdEstablished(
  cp: ControlPlane,
  crd: string,
  timeoutMs = 60_000,
): Promise<void> {
  await waitFor(
    `the CRD ${crd} Established`,
    async () => {
      const status = JSON.parse(await cp.kubectl(["get", "crd", crd, "-o", "json"])) as {
        status?: { conditions?: { type: string; status: string }[] };
      };
      return status.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
    },
    timeoutMs,
  );
}
