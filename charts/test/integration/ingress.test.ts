/**
 * The chart's optional Ingress (issue 19, item 2), rendered by the real helm: off by default; on, an
 * ingress-nginx Ingress to the ChatCluster's client Service with cookie affinity (Socket.IO long
 * polling), timeouts above the ping interval, class, host and TLS; `helm lint --strict` passes; and
 * manifests/examples/ingress.yaml carries the same annotations.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { KUBE_VERSION, REPO_ROOT, readYamlDocs, renderableChart, type K8sObject } from "../support/chart.js";

interface Ingress extends K8sObject {
  spec: {
    ingressClassName?: string;
    tls?: Array<{ hosts: string[]; secretName: string }>;
    rules: Array<{
      host?: string;
      http: {
        paths: Array<{
          path: string;
          pathType: string;
          backend: { service: { name: string; port: { number: number } } };
        }>;
      };
    }>;
  };
}

let chart: Awaited<ReturnType<typeof renderableChart>>;
const ingressOf = (docs: K8sObject[]) => docs.find((d) => d.kind === "Ingress") as Ingress | undefined;
const annotations = (d: K8sObject | undefined) =>
  (d?.metadata as { annotations?: Record<string, string> })?.annotations ?? {};

describe("the chart's Ingress, rendered by helm", { timeout: 180_000 }, () => {
  before(async () => {
    chart = await renderableChart();
  });
  after(async () => {
    await chart?.remove();
  });

  test("off by default", async () => {
    assert.equal(ingressOf(await chart.template()), undefined);
  });

  test("on: ingress-nginx cookie affinity, timeouts above the ping interval, the client Service", async () => {
    const ing = ingressOf(await chart.template({ ingress: { enabled: true } }));
    assert.ok(ing);
    assert.equal(ing.apiVersion, "networking.k8s.io/v1");
    assert.equal(ing.metadata.name, "chat");
    assert.equal(ing.metadata.namespace, "vibetalk-system");
    const a = annotations(ing);
    assert.equal(a["nginx.ingress.kubernetes.io/affinity"], "cookie");
    assert.equal(a["nginx.ingress.kubernetes.io/affinity-mode"], "persistent");
    assert.equal(a["nginx.ingress.kubernetes.io/session-cookie-name"], "vt_affinity");
    assert.equal(a["nginx.ingress.kubernetes.io/session-cookie-path"], "/");
    assert.ok(
      Number(a["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 25,
      "above the 25 s ping interval",
    );
    assert.ok(Number(a["nginx.ingress.kubernetes.io/proxy-send-timeout"]) > 25);
    assert.equal(a["nginx.ingress.kubernetes.io/proxy-buffering"], "off");
    assert.equal(ing.spec.ingressClassName, undefined, "the default class when className is empty");
    assert.equal(ing.spec.tls, undefined);
    const rule = ing.spec.rules[0];
    assert.equal(rule?.host, undefined, "every host when host is empty");
    assert.deepEqual(rule?.http.paths, [
      { path: "/", pathType: "Prefix", backend: { service: { name: "chat", port: { number: 80 } } } },
    ]);
  });

  test("className, host, TLS, the Service port, timeouts and extra annotations from values", async () => {
    const ing = ingressOf(
      await chart.template({
        chatCluster: { name: "talk", spec: { service: { port: 8080 } } },
        ingress: {
          enabled: true,
          className: "nginx",
          host: "chat.example.com",
          tls: { enabled: true, secretName: "chat-tls" },
          timeoutSeconds: 120,
          annotations: { "nginx.ingress.kubernetes.io/limit-rps": "50" },
        },
      }),
    );
    assert.ok(ing);
    assert.equal(ing.spec.ingressClassName, "nginx");
    assert.deepEqual(ing.spec.tls, [{ hosts: ["chat.example.com"], secretName: "chat-tls" }]);
    assert.equal(ing.spec.rules[0]?.host, "chat.example.com");
    assert.equal(ing.spec.rules[0]?.http.paths[0]?.backend.service.name, "talk");
    assert.equal(ing.spec.rules[0]?.http.paths[0]?.backend.service.port.number, 8080);
    assert.equal(annotations(ing)["nginx.ingress.kubernetes.io/proxy-read-timeout"], "120");
    assert.equal(annotations(ing)["nginx.ingress.kubernetes.io/limit-rps"], "50");
  });

  test("TLS without a host or a secret is refused; lint --strict passes with the Ingress on", async () => {
    const file = await chart.writeValues({
      ingress: { enabled: true, tls: { enabled: true, secretName: "x" } },
    });
    const r = await chart.helm.attempt([
      "template",
      "v",
      chart.dir,
      "--kube-version",
      KUBE_VERSION,
      "-f",
      file,
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /ingress.host is required/);
    const ok = await chart.writeValues({
      ingress: { enabled: true, className: "nginx", host: "chat.example.com" },
    });
    await chart.helm(["lint", "--strict", chart.dir, "-f", ok]);
  });

  test("manifests/examples/ingress.yaml has the chart's annotations and backend", async () => {
    const [example] = (await readYamlDocs(join(REPO_ROOT, "manifests/examples/ingress.yaml"))) as Ingress[];
    const rendered = ingressOf(await chart.template({ ingress: { enabled: true } }));
    assert.deepEqual(annotations(example), annotations(rendered));
    assert.deepEqual(example?.spec.rules[0]?.http.paths, rendered?.spec.rules[0]?.http.paths);
  });
});
