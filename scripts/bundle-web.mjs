// Builds the web client as served (PUBLIC_DIR): chat-node/web/src/main.ts (TypeScript) bundled by
// esbuild into one minified ES module, app.js, with its source map, beside the static files of
// chat-node/web/static (index.html, style.css). The types and zod-free values of @vibetalk/protocol
// (its `client` entry) are compiled in; the Socket.IO client is the script the chat-node itself serves,
// so nothing comes from node_modules, and the build fails if anything would. See docs/chat-node.md,
// "The web client".
//
//   node scripts/bundle-web.mjs [out folder, default chat-node/public]
//
// Prints the bundle's size and its gzipped size (what a browser downloads).
import { copyFile, mkdir, readdir, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const staticDir = join(root, "chat-node/web/static");
const out = resolve(process.argv[2] ?? join(root, "chat-node/public"));

const started = Date.now();
const result = await build({
  absWorkingDir: root,
  entryPoints: ["chat-node/web/src/main.ts"],
  outfile: join(out, "app.js"),
  bundle: true,
  minify: true,
  sourcemap: true,
  platform: "browser",
  format: "esm",
  target: ["chrome111", "firefox115", "safari16.4"],
  // What esbuild needs of chat-node/web/tsconfig.json, given here: that file extends the root's, which
  // the image's build stage does not have.
  tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, target: "ES2022" } },
  metafile: true,
  write: false,
  logLevel: "warning",
});
const inputs = Object.keys(result.metafile.inputs);
const fromNodeModules = inputs.filter((p) => p.split("/").includes("node_modules"));
if (fromNodeModules.length > 0) {
  console.error("bundle-web: the web client must not bundle packages from node_modules:");
  for (const p of fromNodeModules) console.error(`  ${p}`);
  process.exit(1);
}
await mkdir(out, { recursive: true });
for (const f of result.outputFiles) await writeFile(f.path, f.contents);
for (const name of await readdir(staticDir)) await copyFile(join(staticDir, name), join(out, name));

const js = result.outputFiles.find((f) => f.path.endsWith(".js"));
const bytes = js?.contents.length ?? 0;
const gz = js ? gzipSync(js.contents, { level: 9 }).length : 0;
console.log(
  `bundle-web: ${inputs.length} source files -> ${relative(process.cwd(), join(out, "app.js"))} ` +
    `(${(bytes / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped) in ${Date.now() - started} ms`,
);
