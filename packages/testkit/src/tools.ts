import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Versions pinned in tools/versions.env, read by scripts/setup too. */
export function toolVersions(): Record<string, string> {
  const text = readFileSync(join(repoRoot, "tools/versions.env"), "utf8");
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(\S+)/.exec(line.trim());
    if (m?.[1] && m[2]) out[m[1]] = m[2];
  }
  return out;
}

export function cacheDir(): string {
  return process.env.VIBETALK_CACHE ?? join(homedir(), ".cache", "vibetalk");
}

const versionKey: Record<string, string> = {
  "kube-apiserver": "K8S_VERSION",
  "kube-controller-manager": "K8S_VERSION",
  "kube-scheduler": "K8S_VERSION",
  kubectl: "K8S_VERSION",
  kubelet: "K8S_VERSION",
  "kube-proxy": "K8S_VERSION",
  etcd: "ETCD_VERSION",
  kwok: "KWOK_VERSION",
  helm: "HELM_VERSION",
  ferretdb: "FERRETDB_VERSION",
  "kube-router": "KUBE_ROUTER_VERSION",
};

/** Absolute path of a tool built by scripts/setup; throws a message saying how to get it when missing. */
export function toolPath(name: keyof typeof versionKey | string): string {
  const key = versionKey[name];
  if (!key) throw new Error(`toolPath: unknown tool ${name}`);
  const version = toolVersions()[key];
  const path = join(cacheDir(), "bin", `${name}-${version}`);
  if (!existsSync(path)) {
    throw new Error(`${name} ${version} is missing at ${path}: run scripts/setup (it builds the toolchain)`);
  }
  return path;
}

/** A system binary (Debian package); throws naming the package when missing. */
export function systemBinary(paths: string[], debianPackage: string): string {
  for (const p of paths) if (existsSync(p)) return p;
  throw new Error(
    `${paths[0]} is missing: run scripts/setup (it installs the Debian package ${debianPackage})`,
  );
}
