// Rewrites the generated schema reference inside docs/protocol.md.
// Usage: node --import tsx packages/protocol/src/write-docs.ts [--check]
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { withReference } from "./reference.js";

const path = fileURLToPath(new URL("../../../docs/protocol.md", import.meta.url));
const current = readFileSync(path, "utf8");
const next = withReference(current);
if (process.argv.includes("--check")) {
  if (next !== current) {
    console.error("docs/protocol.md is out of date: run npm run docs -w @vibetalk/protocol");
    process.exit(1);
  }
} else if (next !== current) {
  writeFileSync(path, next);
  console.log("docs/protocol.md updated");
}
