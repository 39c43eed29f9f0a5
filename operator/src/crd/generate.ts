/**
 * Writes crds/chatcluster.yaml from the schema in code, formatted by the repository's prettier
 * settings (so `prettier --check .` agrees). `--check` exits 1 when the file differs.
 * Run: npm run gen:crd -w @vibetalk/operator
 */
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { format, resolveConfig } from "prettier";
import { renderCrdYaml } from "./crd.js";

export const CRD_PATH = fileURLToPath(new URL("../../../crds/chatcluster.yaml", import.meta.url));

/** The exact text crds/chatcluster.yaml must have. */
export async function crdFileText(): Promise<string> {
  const options = (await resolveConfig(CRD_PATH)) ?? {};
  return format(renderCrdYaml(), { ...options, filepath: CRD_PATH });
}

async function main(): Promise<void> {
  const text = await crdFileText();
  if (process.argv.includes("--check")) {
    const current = await readFile(CRD_PATH, "utf8").catch(() => "");
    if (current !== text) {
      console.error(`${CRD_PATH} is out of date: run npm run gen:crd -w @vibetalk/operator`);
      process.exit(1);
    }
    return;
  }
  await writeFile(CRD_PATH, text);
  console.log(`wrote ${CRD_PATH}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
