import { generateKeyPairSync } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "./process.js";

export interface ControlPlanePki {
  caCert: string;
  caKey: string;
  frontProxyCert: string;
  frontProxyKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

/**
 * Key material for a throw-away control plane: a CA with one client certificate for the aggregation layer's
 * front proxy, and the service-account signing key pair. The API server makes its own serving certificate.
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
  await openssl([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "front-proxy.key",
    "-out",
    "front-proxy.csr",
    "-subj",
    "/CN=front-proxy-client",
  ]);
  await openssl([
    "x509",
    "-req",
    "-in",
    "front-proxy.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "front-proxy.crt",
    "-days",
    "2",
  ]);
  return {
    caCert: f("ca.crt"),
    caKey: f("ca.key"),
    frontProxyCert: f("front-proxy.crt"),
    frontProxyKey: f("front-proxy.key"),
    serviceAccountKey: f("sa.key"),
    serviceAccountPub: f("sa.pub"),
  };
}
