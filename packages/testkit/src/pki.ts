import { generateKeyPairSync } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "./process.js";

export interface ControlPlanePki {
  caCert: string;
  caKey: string;
  frontProxyCert: string;
  frontProxyKey: string;
  /** The API server's client certificate for the kubelet's API (logs, exec): system:masters. */
  kubeletClientCert: string;
  kubeletClientKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

/**
 * Key material for a throw-away control plane: a CA with client certificates for the aggregation layer's
 * front proxy and for the API server's calls to the kubelet, and the service-account signing key pair. The API server makes its own serving certificate.
 */
export async function makePki(dir: string): Promise<ControlPlanePki> {
  const f = (name: string): string => join(dir, name);
  const sa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  await writeFile(f("sa.key"), sa.privateKey.export({ type: "pkcs8", format: "pem" }));
  await writeFile(f("sa.pub"), sa.publicKey.export({ type: "spki", format: "pem" }));
  const openssl = (args: string[]): Promise<string> => run("openssl", args, { cwd: dir });
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=vibetalk-test-ca",
  ]);
  const clientCert = async (name: string, subject: string): Promise<void> => {
    await openssl([
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      subject,
    ]);
    await openssl([
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "2",
    ]);
  };
  await clientCert("front-proxy", "/CN=front-proxy-client");
  await clientCert("kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client");
  return {
    caCert: f("ca.crt"),
    caKey: f("ca.key"),
    frontProxyCert: f("front-proxy.crt"),
    frontProxyKey: f("front-proxy.key"),
    kubeletClientCert: f("kubelet-client.crt"),
    kubeletClientKey: f("kubelet-client.key"),
    serviceAccountKey: f("sa.key"),
    serviceAccountPub: f("sa.pub"),
  };
}
