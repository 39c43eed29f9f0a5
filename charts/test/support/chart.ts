/**
 * Helpers for the chart's tests: paths, a renderable copy of the chart, and helm with its own state.
 *
 * helm refuses to template, lint-render or install a chart whose declared dependencies are missing from
 * charts/, even when their condition is false, and chart repositories are unreachable here (DESIGN §6).
 * So the tests render a copy with the `dependencies` block removed; the dependency wiring is checked
 * by assertions on Chart.yaml and values.yaml (test/unit) and on the rendered Secret (test/integration).
 */
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { dump, load, loadAll } from "js-yaml";
import { run, runCommand, tempDir, toolPath } from "@vibetalk/testkit";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const CHART_DIR = join(REPO_ROOT, "charts/vibetalk");
export const REPO_CRD = join(REPO_ROOT, "crds/chatcluster.yaml");
export const CHART_CRD = join(CHART_DIR, "crds/chatcluster.yaml");
export const OPERATOR_MANIFESTS = join(REPO_ROOT, "manifests/operator.yaml");
export const EXAMPLE_CHATCLUSTER = join(REPO_ROOT, "manifests/examples/chatcluster.yaml");

export interface Dependency {
  name: string;
  version: string;
  repository: string;
  condition?: string;
  alias?: string;
}

export interface ChartYaml {
  apiVersion: string;
  name: string;
  version: string;
  appVersion: string;
  kubeVersion?: string;
  dependencies?: Dependency[];
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

export type Values = Record<string, unknown>;

export async function readYaml<T>(path: string): Promise<T> {
  return load(await readFile(path, "utf8")) as T;
}

export async function readYamlDocs(path: string): Promise<K8sObject[]> {
  return parseDocs(await readFile(path, "utf8"));
}

export function parseDocs(text: string): K8sObject[] {
  return (loadAll(text) as (K8sObject | null)[]).filter((d): d is K8sObject => d !== null);
}

/** The Kubernetes version the tests render for (the control plane's). */
export const KUBE_VERSION = "1.34.4";

export interface Helm {
  /** Runs helm with private config/cache/data folders; throws with helm's output on failure. */
  (args: string[], options?: { kubeconfig?: string }): Promise<string>;
  /** Same, but resolves with the exit code and output instead of throwing. */
  attempt(
    args: string[],
    options?: { kubeconfig?: string },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
}

/**
 * A copy of charts/vibetalk without its `dependencies` block, and helm set up to use it. Call
 * `remove()` when done.
 */
export async function renderableChart(): Promise<{
  dir: string;
  helm: Helm;
  writeValues(values: Values): Promise<string>;
  template(values?: Values, o?: { release?: string; namespace?: string }): Promise<K8sObject[]>;
  remove(): Promise<void>;
}> {
  const tmp = await tempDir("chart");
  const dir = join(tmp.path, "vibetalk");
  await cp(CHART_DIR, dir, { recursive: true });
  const chart = await readYaml<ChartYaml>(join(dir, "Chart.yaml"));
  delete chart.dependencies;
  await writeFile(join(dir, "Chart.yaml"), dump(chart));
  for (const sub of ["config", "cache", "data"]) await mkdir(join(tmp.path, `helm-${sub}`));
  const env = {
    ...process.env,
    HELM_CONFIG_HOME: join(tmp.path, "helm-config"),
    HELM_CACHE_HOME: join(tmp.path, "helm-cache"),
    HELM_DATA_HOME: join(tmp.path, "helm-data"),
  };
  const withKube = (args: string[], kubeconfig?: string) =>
    kubeconfig ? [...args, `--kubeconfig=${kubeconfig}`] : args;
  const helm = ((args: string[], o: { kubeconfig?: string } = {}) =>
    run(toolPath("helm"), withKube(args, o.kubeconfig), { env, timeoutMs: 180_000 })) as Helm;
  helm.attempt = (args, o = {}) =>
    runCommand(toolPath("helm"), withKube(args, o.kubeconfig), { env, timeoutMs: 180_000 });
  let n = 0;
  const writeValues = async (values: Values): Promise<string> => {
    const file = join(tmp.path, `values-${n++}.yaml`);
    await writeFile(file, dump(values));
    return file;
  };
  return {
    dir,
    helm,
    writeValues,
    async template(values = {}, o = {}) {
      const file = await writeValues(values);
      const text = await helm([
        "template",
        o.release ?? "vibetalk",
        dir,
        "--namespace",
        o.namespace ?? "vibetalk-system",
        "--kube-version",
        KUBE_VERSION,
        "-f",
        file,
      ]);
      return parseDocs(text);
    },
    remove: () => tmp.remove(),
  };
}

/** Values that switch the three bitnami dependencies off and give their URLs instead. */
export const EXTERNAL_SERVICES: Values = {
  rabbitmq: { enabled: false },
  mongodb: { enabled: false },
  redis: { enabled: false },
  chatCluster: {
    external: {
      rabbitmqUrl: "amqp://chat:secret@rabbitmq.example.internal:5672/vibetalk",
      redisUrl: "redis://:secret@redis.example.internal:6379",
      mongodbUrl: "mongodb://chat:secret@mongodb.example.internal:27017/vibetalk",
    },
  },
};
