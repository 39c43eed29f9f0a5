// Builds the web client as served (PUBLIC_DIR): chat-node/web/src/main.ts (TypeScript) bundled by
// esbuild into one minified ES module, app.js, with its source map, beside the static files of
// chat-node/web/static (index.html, style.css). The types and zod-free values of @vibetalk/protocol
// (its `client` entry) are compiled in; the Socket.IO client is the script the chat-node itself serves,
// so nothing comes from node_modules, and the build fails if anything would. A second entry,
// chat-node/web/sw/sw.ts, is the service worker (Web Push), sw.js at the root (scope /), a classic
// script (IIFE) with the same check. See docs/chat-node.md, "The web client".
//
//   node scripts/bundle-web.mjs [out folder, default chat-node/public]
//
// Prints each bundle's size and its gzipped size (what a browser downloads).
import { copyFile, mkdir, readdir, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const staticDir = join(root, "chat-node/web/static");
const out = resolve(process.argv[2] ?? join(root, "chat-node/public"));

const started = Date.now();
const common = {
  absWorkingDir: root,
  bundle: true,
  minify: true,
  sourcemap: true,
  platform: "browser",
  target: ["chrome111", "firefox115", "safari16.4"],
  // What esbuild needs of chat-node/web/tsconfig.json, given here: that file extends the root's, which
  // the image's build stage does not have.
  tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, target: "ES2022" } },
  metafile: true,
  write: false,
  logLevel: "warning",
};
const bundles = [
  { entry: "chat-node/web/src/main.ts", file: "app.js", format: "esm" },
  // A service worker registered without {type: "module"} is a classic script.
  { entry: "chat-node/web/sw/sw.ts", file: "sw.js", format: "iife" },
];
const results = await Promise.all(
  bundles.map((b) =>
    build({ ...common, entryPoints: [b.entry], outfile: join(out, b.file), format: b.format }),
  ),
);
const inputs = [...new Set(results.flatMap((r) => Object.keys(r.metafile.inputs)))];
const fromNodeModules = inputs.filter((p) => p.split("/").includes("node_modules"));
if (fromNodeModules.length > 0) {
  console.error("bundle-web: the web client must not bundle packages from node_modules:");
  for (const p of fromNodeModules) console.error(`  ${p}`);
  process.exit(1);
}
await mkdir(out, { recursive: true });
for (const f of results.flatMap((r) => r.outputFiles)) await writeFile(f.path, f.contents);
for (const name of await readdir(staticDir)) await copyFile(join(staticDir, name), join(out, name));

const sizes = results.map((r, i) => {
  const js = r.outputFiles.find((f) => f.path.endsWith(".js"));
  const bytes = js?.contents.length ?? 0;
  const gz = js ? gzipSync(js.contents, { level: 9 }).length : 0;
  const name = relative(process.cwd(), join(out, bundles[i].file));
  return `${name} (${(bytes / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped)`;
});
console.log(`bundle-web: ${inputs.length} source files -> ${sizes.join(", ")} in ${Date.now() - started} ms`);
