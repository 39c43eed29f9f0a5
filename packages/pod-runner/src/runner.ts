import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { containerEnv, type EnvSources } from "./env.js";
import { httpProbe } from "./probe.js";

/** How to run a container image as a local process: the image's entrypoint, here. */
export interface ImageCommand {
  command: string;
  args: string[];
  cwd?: string;
}

export interface PodRunnerOptions {
  /** Admin kubeconfig the runner itself uses (a real kubelet has node credentials). */
  kubeconfigPath: string;
  nodeName?: string;
  /** Image name (without tag) → how to run it. A pod whose image is not here fails with ErrImagePull. */
  images: Record<string, ImageCommand>;
  /** Folder for pod logs and per-pod kubeconfigs. */
  workDir: string;
  /** Pod IPs are 127.<ipPrefix>.x.y; each runner takes its own prefix (default 1). */
  ipPrefix?: number;
  /** Milliseconds between pod list polls and probe rounds (default 250). */
  pollMs?: number;
  log?: (message: string) => void;
}

interface RunningPod {
  pod: k8s.V1Pod;
  ip: string;
  child?: ChildProcess;
  ready: boolean;
  restarts: number;
  startedAt?: Date;
  stopping: boolean;
  lastStatus: string;
  failure?: string;
  nextStartAt: number;
  /** Readiness probing as the kubelet does it: every periodSeconds, thresholds of consecutive results. */
  nextProbeAt: number;
  probeFailures: number;
  probeSuccesses: number;
}

export interface PodRunner {
  nodeName: string;
  /** Pod name → pid of its process, for chaos tests (SIGKILL a pod's process). */
  pid(namespace: string, name: string): number | undefined;
  podIP(namespace: string, name: string): string | undefined;
  /** Names of the pods this runner has a live process for. */
  running(): string[];
  stop(): Promise<void>;
}

function podStatus(rp: RunningPod, running: boolean, ready: boolean): k8s.V1PodStatus {
  const container = rp.pod.spec?.containers[0];
  const now = new Date();
  const cond = (type: string, ok: boolean): k8s.V1PodCondition => ({
    type,
    status: ok ? "True" : "False",
    lastTransitionTime: now,
  });
  const waiting = {
    reason: rp.failure ? "CreateContainerConfigError" : "CrashLoopBackOff",
    message: rp.failure ?? "restarting",
  };
  return {
    phase: "Running",
    hostIP: "127.0.0.1",
    podIP: rp.ip,
    podIPs: [{ ip: rp.ip }],
    startTime: rp.startedAt ?? now,
    conditions: [
      cond("PodScheduled", true),
      cond("Initialized", true),
      cond("ContainersReady", ready),
      cond("Ready", ready),
    ],
    containerStatuses: [
      {
        name: container?.name ?? "main",
        image: container?.image ?? "",
        imageID: "",
        ready,
        started: running,
        restartCount: rp.restarts,
        state: running ? { running: { startedAt: rp.startedAt ?? now } } : { waiting },
      },
    ],
  };
}

/**
 * One readiness round, if due: Ready flips after failureThreshold failures or successThreshold successes. A
 * pod that is not Ready yet is probed every second rather than every periodSeconds, so starts are quick.
 */
async function probeReadiness(rp: RunningPod, container: k8s.V1Container): Promise<void> {
  const probe = container.readinessProbe;
  if (Date.now() < rp.nextProbeAt) return;
  rp.nextProbeAt = Date.now() + (rp.ready ? (probe?.periodSeconds ?? 10) * 1000 : 1000);
  if (await httpProbe(container, probe, rp.ip)) {
    rp.probeFailures = 0;
    rp.probeSuccesses += 1;
    if (rp.probeSuccesses >= (probe?.successThreshold ?? 1)) rp.ready = true;
  } else {
    rp.probeSuccesses = 0;
    rp.probeFailures += 1;
    if (!rp.ready || rp.probeFailures >= (probe?.failureThreshold ?? 3)) rp.ready = false;
  }
}

const key = (ns: string | undefined, name: string | undefined): string => `${ns ?? "default"}/${name ?? ""}`;

function imageName(image: string | undefined): string {
  const noDigest = (image ?? "").split("@")[0] ?? "";
  const lastColon = noDigest.lastIndexOf(":");
  return lastColon > noDigest.lastIndexOf("/") ? noDigest.slice(0, lastColon) : noDigest;
}

/**
 * A small kubelet: registers a Node, renews its Lease, and runs each pod bound to it as a local process on a
 * loopback IP of its own — env, ConfigMap/Secret refs and readiness probes from the pod spec, a token of the
 * pod's ServiceAccount (TokenRequest API) in a kubeconfig, graceful deletion with SIGTERM and the pod's grace.
 */
export async function startPodRunner(options: PodRunnerOptions): Promise<PodRunner> {
  const nodeName = options.nodeName ?? "runner-0";
  const log = options.log ?? ((m: string) => console.log(`[pod-runner ${nodeName}] ${m}`));
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(options.kubeconfigPath);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  const server = kc.getCurrentCluster()?.server ?? "";
  const pollMs = options.pollMs ?? 250;
  const ipPrefix = options.ipPrefix ?? 1;
  const pods = new Map<string, RunningPod>();
  let nextIp = 2;
  let stopped = false;
  // Whatever ends this process, the pods' processes end with it (each runs in its own process group).
  const killAll = (): void => {
    for (const rp of pods.values()) {
      if (rp.child?.pid !== undefined && rp.child.exitCode === null) {
        try {
          process.kill(-rp.child.pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
    }
  };
  process.on("exit", killAll);
  await mkdir(options.workDir, { recursive: true });

  const mergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
  const sources: EnvSources = {
    secret: async (namespace, name) => {
      try {
        const s = await core.readNamespacedSecret({ name, namespace });
        return Object.fromEntries(
          Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]),
        );
      } catch {
        return undefined;
      }
    },
    configMap: async (namespace, name) => {
      try {
        return (await core.readNamespacedConfigMap({ name, namespace })).data ?? {};
      } catch {
        return undefined;
      }
    },
  };

  // --- the Node and its Lease ---
  const nodeStatus = (): k8s.V1NodeStatus => {
    const now = new Date();
    return {
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "KubeletReady",
          message: "vibetalk pod-runner is posting ready status",
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
        ...["MemoryPressure", "DiskPressure", "PIDPressure"].map((type) => ({
          type,
          status: "False",
          reason: `KubeletHasNo${type}`,
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        })),
      ],
      addresses: [
        { type: "InternalIP", address: "127.0.0.1" },
        { type: "Hostname", address: nodeName },
      ],
      capacity: { cpu: "64", memory: "64Gi", pods: "250" },
      allocatable: { cpu: "64", memory: "64Gi", pods: "250" },
      nodeInfo: {
        architecture: "amd64",
        bootID: "",
        containerRuntimeVersion: "vibetalk-pod-runner://0.1",
        kernelVersion: "",
        kubeProxyVersion: "",
        kubeletVersion: "v1.34.4",
        machineID: "",
        operatingSystem: "linux",
        osImage: "local processes",
        systemUUID: "",
      },
    };
  };
  await core
    .createNode({
      body: {
        metadata: {
          name: nodeName,
          labels: {
            "kubernetes.io/hostname": nodeName,
            "kubernetes.io/os": "linux",
            "vibetalk.io/pod-runner": "true",
          },
        },
      },
    })
    .catch((err: unknown) => {
      if ((err as { code?: number }).code !== 409) throw err;
    });
  await core.patchNodeStatus({ name: nodeName, body: { status: nodeStatus() } }, mergePatch);
  const renewLease = async (): Promise<void> => {
    const body: k8s.V1Lease = {
      metadata: { name: nodeName, namespace: "kube-node-lease" },
      spec: { holderIdentity: nodeName, leaseDurationSeconds: 40, renewTime: new k8s.V1MicroTime() },
    };
    try {
      await coordination.replaceNamespacedLease({ name: nodeName, namespace: "kube-node-lease", body });
    } catch {
      await coordination.createNamespacedLease({ namespace: "kube-node-lease", body }).catch(() => undefined);
    }
  };
  await renewLease();
  const heartbeat = setInterval(() => {
    void renewLease();
    void core
      .patchNodeStatus({ name: nodeName, body: { status: nodeStatus() } }, mergePatch)
      .catch(() => undefined);
  }, 10_000);

  // --- pods ---
  const podKubeconfig = async (rp: RunningPod): Promise<string> => {
    const ns = rp.pod.metadata?.namespace ?? "default";
    const sa = rp.pod.spec?.serviceAccountName ?? "default";
    const tr = await core.createNamespacedServiceAccountToken({
      name: sa,
      namespace: ns,
      body: {
        spec: {
          audiences: [],
          expirationSeconds: 3600 * 24,
          boundObjectRef: {
            apiVersion: "v1",
            kind: "Pod",
            name: rp.pod.metadata?.name,
            uid: rp.pod.metadata?.uid,
          },
        },
      },
    });
    const path = join(options.workDir, `${ns}.${rp.pod.metadata?.name}.kubeconfig`);
    await writeFile(
      path,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters: [{name: c, cluster: {server: " + server + ", insecure-skip-tls-verify: true}}]",
        `users: [{name: u, user: {token: ${tr.status?.token}}}]`,
        `contexts: [{name: c, context: {cluster: c, user: u, namespace: ${ns}}}]`,
        "current-context: c",
        "",
      ].join("\n"),
    );
    return path;
  };

  const patchStatus = async (rp: RunningPod): Promise<void> => {
    const running = rp.child !== undefined && rp.child.exitCode === null && !rp.failure;
    const ready = running && rp.ready && !rp.stopping;
    const fingerprint = `${ready}/${running}/${rp.restarts}/${rp.failure ?? ""}`;
    if (fingerprint === rp.lastStatus) return;
    rp.lastStatus = fingerprint;
    const status = podStatus(rp, running, ready);
    await core
      .patchNamespacedPodStatus(
        {
          name: rp.pod.metadata?.name ?? "",
          namespace: rp.pod.metadata?.namespace ?? "default",
          body: { status },
        },
        mergePatch,
      )
      .catch((err: unknown) =>
        log(
          `status patch failed for ${key(rp.pod.metadata?.namespace, rp.pod.metadata?.name)}: ${String(err)}`,
        ),
      );
  };

  const startProcess = async (rp: RunningPod): Promise<void> => {
    const container = rp.pod.spec?.containers[0];
    const name = key(rp.pod.metadata?.namespace, rp.pod.metadata?.name);
    const image = options.images[imageName(container?.image)];
    if (!container || !image) {
      rp.failure = `ErrImagePull: the pod runner has no command for image ${container?.image}`;
      return;
    }
    try {
      const env = await containerEnv(rp.pod, container, rp.ip, sources);
      const kubeconfig = await podKubeconfig(rp);
      const logFile = join(options.workDir, `${name.replace("/", ".")}.log`);
      const out = createWriteStream(logFile, { flags: "a" });
      const child = spawn(image.command, [...image.args, ...(container.args ?? [])], {
        cwd: image.cwd,
        env: {
          ...process.env,
          ...env,
          HOST: rp.ip,
          KUBECONFIG: kubeconfig,
          KUBERNETES_SERVICE_HOST: "",
          POD_IP: rp.ip,
        },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      child.stdout?.pipe(out, { end: false });
      child.stderr?.pipe(out, { end: false });
      child.once("exit", (code, signal) => {
        out.end();
        if (rp.stopping || stopped) return;
        rp.restarts += 1;
        rp.ready = false;
        rp.nextStartAt = Date.now() + Math.min(10_000, 1000 * 2 ** Math.min(rp.restarts - 1, 4));
        log(`${name} exited (code ${code}, signal ${signal}); restart #${rp.restarts} scheduled`);
        void patchStatus(rp);
      });
      rp.child = child;
      rp.ready = false;
      rp.nextProbeAt = 0;
      rp.probeFailures = 0;
      rp.probeSuccesses = 0;
      rp.failure = undefined;
      rp.startedAt = new Date();
      log(`${name} started on ${rp.ip} (pid ${child.pid}, log ${logFile})`);
    } catch (err) {
      rp.failure = err instanceof Error ? err.message : String(err);
      log(`${name} cannot start: ${rp.failure}`);
      rp.nextStartAt = Date.now() + 2_000;
    }
  };

  const stopProcess = async (rp: RunningPod, graceSeconds: number): Promise<void> => {
    rp.stopping = true;
    const child = rp.child;
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceSeconds * 1000)));
    await Promise.race([exited, timeout]);
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        /* gone */
      }
      await exited;
    }
  };

  const finishDeletion = async (k: string, rp: RunningPod): Promise<void> => {
    const grace =
      rp.pod.metadata?.deletionGracePeriodSeconds ?? rp.pod.spec?.terminationGracePeriodSeconds ?? 30;
    void patchStatus(rp);
    await stopProcess(rp, grace);
    await core
      .deleteNamespacedPod({
        name: rp.pod.metadata?.name ?? "",
        namespace: rp.pod.metadata?.namespace ?? "default",
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, preconditions: { uid: rp.pod.metadata?.uid } },
      })
      .catch((err: unknown) => {
        if ((err as { code?: number }).code !== 404) log(`final delete of ${k} failed: ${String(err)}`);
      });
    pods.delete(k);
    log(`${k} terminated`);
  };

  const deleting = new Set<string>();
  const podRecord = (k: string, pod: k8s.V1Pod): RunningPod | undefined => {
    const existing = pods.get(k);
    if (existing) return existing.pod.metadata?.uid === pod.metadata?.uid ? existing : undefined; // old one still terminating
    // hostNetwork pods share the node's address, 127.0.0.1, as they would share a node's network.
    const n = pod.spec?.hostNetwork ? 0 : nextIp++;
    const rp: RunningPod = {
      pod,
      ip: pod.spec?.hostNetwork ? "127.0.0.1" : `127.${ipPrefix}.${Math.floor(n / 250)}.${(n % 250) + 2}`,
      ready: false,
      restarts: 0,
      stopping: false,
      lastStatus: "",
      nextStartAt: 0,
      nextProbeAt: 0,
      probeFailures: 0,
      probeSuccesses: 0,
    };
    pods.set(k, rp);
    return rp;
  };
  const syncPod = async (k: string, rp: RunningPod): Promise<void> => {
    if (rp.pod.metadata?.deletionTimestamp) {
      if (!deleting.has(k)) {
        deleting.add(k);
        void finishDeletion(k, rp).finally(() => deleting.delete(k));
      }
      return;
    }
    const alive = rp.child !== undefined && rp.child.exitCode === null && rp.child.signalCode === null;
    if (!alive && Date.now() >= rp.nextStartAt) await startProcess(rp);
    const container = rp.pod.spec?.containers[0];
    if (container && rp.child && !rp.failure) await probeReadiness(rp, container);
    await patchStatus(rp);
  };
  const sync = async (): Promise<void> => {
    const list = await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}` });
    const seen = new Set<string>();
    for (const pod of list.items) {
      const k = key(pod.metadata?.namespace, pod.metadata?.name);
      seen.add(k);
      const rp = podRecord(k, pod);
      if (!rp) continue;
      rp.pod = pod;
      await syncPod(k, rp);
    }
    // Pods deleted from the API without graceful deletion (force delete): stop their process at once.
    for (const [k, rp] of pods) {
      if (!seen.has(k) && !deleting.has(k)) {
        deleting.add(k);
        void stopProcess(rp, 0).finally(() => {
          pods.delete(k);
          deleting.delete(k);
        });
      }
    }
  };

  let loopDone: Promise<void> = Promise.resolve();
  const loop = async (): Promise<void> => {
    while (!stopped) {
      try {
        await sync();
      } catch (err) {
        log(`sync failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  };
  loopDone = loop();

  return {
    nodeName,
    pid: (ns, name) => pods.get(key(ns, name))?.child?.pid,
    podIP: (ns, name) => pods.get(key(ns, name))?.ip,
    running: () =>
      [...pods.entries()].filter(([, rp]) => rp.child && rp.child.exitCode === null).map(([k]) => k),
    stop: async () => {
      stopped = true;
      process.off("exit", killAll);
      clearInterval(heartbeat);
      await loopDone;
      await Promise.all([...pods.values()].map((rp) => stopProcess(rp, 5)));
    },
  };
}
