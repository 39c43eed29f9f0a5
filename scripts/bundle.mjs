// Compiles one program of this repository (chat-node, operator) into a single ES module with esbuild:
// our own TypeScript, including the workspace packages it imports (@vibetalk/protocol, whose exports
// point at .ts sources), goes into the bundle; every npm dependency the program's package.json declares
// stays an external import, resolved at run time from node_modules (`npm ci --omit=dev`).
//
//   node scripts/bundle.mjs <workspace folder> [entry, default src/main.ts] [outfile, default dist/main.js]
//
// Fails when anything from node_modules would be bundled: that is an import of a package the program
// does not declare in its dependencies, which a production install would not provide either.
import { readFile } from "node:fs/promises";
import { relative, resolve } from "node:path";
import { build } from "esbuild";

const [dir, entry = "src/main.ts", outfile = "dist/main.js"] = process.argv.slice(2);
if (!dir) {
  console.error("usage: node scripts/bundle.mjs <workspace folder> [entry] [outfile]");
  process.exit(2);
}
const root = resolve(dir);
const pkg = JSON.parse(await readFile(resolve(root, "package.json"), "utf8"));
const external = Object.keys({
  ...pkg.dependencies,
  ...pkg.optionalDependencies,
  ...pkg.peerDependencies,
}).filter((name) => !name.startsWith("@vibetalk/"));

const started = Date.now();
const result = await build({
  absWorkingDir: root,
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // A package name also covers its subpaths (pino/file, zod/v4, ...).
  external,
  metafile: true,
  logLevel: "warning",
});

const inputs = Object.keys(result.metafile.inputs);
const fromNodeModules = inputs.filter((p) => p.split("/").includes("node_modules"));
if (fromNodeModules.length > 0) {
  console.error(
    `bundle ${pkg.name}: these come from node_modules but are not dependencies of ${relative(process.cwd(), root) || "."}/package.json:`,
  );
  for (const p of fromNodeModules) console.error(`  ${p}`);
  process.exit(1);
}
const out = Object.entries(result.metafile.outputs)[0];
console.log(
  `bundle ${pkg.name}: ${inputs.length} source files -> ${out?.[0]} (${Math.round((out?.[1].bytes ?? 0) / 1024)} KiB, ${external.length} external packages) in ${Date.now() - started} ms`,
);
