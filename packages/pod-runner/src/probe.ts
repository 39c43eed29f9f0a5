import type { V1Container, V1Probe } from "@kubernetes/client-node";

/** The port number a probe's httpGet names, resolving a named container port. */
export function probePort(container: V1Container, probe: V1Probe): number | undefined {
  const port = probe.httpGet?.port;
  if (typeof port === "number") return port;
  if (typeof port === "string" && /^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** One HTTP probe: success is a 2xx or 3xx answer within the probe's timeout, as the kubelet counts it. */
export async function httpProbe(
  container: V1Container,
  probe: V1Probe | undefined,
  ip: string,
): Promise<boolean> {
  if (!probe?.httpGet) return true;
  const port = probePort(container, probe);
  if (port === undefined) return false;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), (probe.timeoutSeconds ?? 1) * 1000);
  try {
    const res = await fetch(`http://${ip}:${port}${probe.httpGet.path ?? "/"}`, {
      signal: controller.signal,
    });
    await res.arrayBuffer();
    return res.status >= 200 && res.status < 400;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
