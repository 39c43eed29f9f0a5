import type { V1Container, V1EnvVar, V1Pod } from "@kubernetes/client-node";

/** Reads Secrets and ConfigMaps for env resolution; the runner passes an API-backed implementation. */
export interface EnvSources {
  secret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  configMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
}

export class EnvResolutionError extends Error {}

function fieldValue(pod: V1Pod, podIP: string, fieldPath: string): string {
  const m = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(fieldPath);
  if (m?.[1] && m[2]) {
    const map = m[1] === "labels" ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[m[2]] ?? "";
  }
  const fields: Record<string, string | undefined> = {
    "metadata.name": pod.metadata?.name,
    "metadata.namespace": pod.metadata?.namespace,
    "metadata.uid": pod.metadata?.uid,
    "spec.nodeName": pod.spec?.nodeName,
    "spec.serviceAccountName": pod.spec?.serviceAccountName,
    "status.podIP": podIP,
    "status.hostIP": "127.0.0.1",
  };
  if (!(fieldPath in fields)) throw new EnvResolutionError(`unsupported fieldRef ${fieldPath}`);
  return fields[fieldPath] ?? "";
}

/** Expands $(VAR) references to earlier variables, as the kubelet does; $$(VAR) stays literal. */
export function expand(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string | undefined) => {
    if (whole === "$$") return "$";
    return name !== undefined && name in env ? (env[name] ?? "") : whole;
  });
}

async function envFromValues(
  ns: string,
  container: V1Container,
  sources: EnvSources,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const ref = from.secretRef ?? from.configMapRef;
    if (!ref?.name) continue;
    const kind = from.secretRef ? "Secret" : "ConfigMap";
    const data = from.secretRef ? await sources.secret(ns, ref.name) : await sources.configMap(ns, ref.name);
    if (!data) {
      if (ref.optional) continue;
      throw new EnvResolutionError(`envFrom ${kind} ${ns}/${ref.name} not found`);
    }
    for (const [k, v] of Object.entries(data)) env[`${from.prefix ?? ""}${k}`] = v;
  }
  return env;
}

async function keyRefValue(ns: string, e: V1EnvVar, sources: EnvSources): Promise<string | undefined> {
  const secretRef = e.valueFrom?.secretKeyRef;
  const ref = secretRef ?? e.valueFrom?.configMapKeyRef;
  if (!ref) throw new EnvResolutionError(`env ${e.name}: unsupported valueFrom`);
  const kind = secretRef ? "Secret" : "ConfigMap";
  const data = secretRef
    ? await sources.secret(ns, ref.name ?? "")
    : await sources.configMap(ns, ref.name ?? "");
  const value = data?.[ref.key];
  if (value === undefined && !ref.optional) {
    throw new EnvResolutionError(`${kind} ${ns}/${ref.name} has no key ${ref.key} (env ${e.name})`);
  }
  return value;
}

/** The environment a container of `pod` sees: envFrom first, then env in order, with $(VAR) expansion. */
export async function containerEnv(
  pod: V1Pod,
  container: V1Container,
  podIP: string,
  sources: EnvSources,
): Promise<Record<string, string>> {
  const ns = pod.metadata?.namespace ?? "default";
  const env = await envFromValues(ns, container, sources);
  for (const e of container.env ?? []) {
    let value: string | undefined;
    if (e.value !== undefined) value = expand(e.value, env);
    else if (!e.valueFrom) value = "";
    else if (e.valueFrom.fieldRef) value = fieldValue(pod, podIP, e.valueFrom.fieldRef.fieldPath);
    else value = await keyRefValue(ns, e, sources);
    if (value !== undefined) env[e.name] = value;
  }
  return env;
}
