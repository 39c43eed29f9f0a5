// npm installs for the container images (chat-node/Containerfile, operator/Containerfile), exactly as
// package-lock.json pins them. Run in a copy of the repository's npm manifests (root package.json, the
// lock, every workspace's package.json): it rewrites them.
//
//   node scripts/image-deps.mjs prod <workspace>   the production dependencies of one workspace
//   node scripts/image-deps.mjs tools <name>...    only these root devDependencies (e.g. esbuild), and
//                                                  node_modules links to the workspaces, for the build
//
// prod: `npm ci --omit=dev --workspace <w>` alone is not enough: npm omits a package only when it is a
// dev dependency of the whole tree, so a devDependency of <w> that another workspace needs at run time
// (socket.io-client, a dependency of e2e) is installed anyway. So <w>'s devDependencies are dropped from
// its package.json and from the lock's entry for <w> (the two stay consistent for `npm ci`), then npm
// installs, the workspace links, type declarations and source maps (never loaded at run time) go, and
// every installed package is checked against the lock: each must be reachable from <w>'s dependencies
// by Node's resolution, and none may be one of the build's tools.
//
// tools: a lock holding only the named packages and what they need, at the paths the full lock gives
// them (resolution from the root is the same), so `npm ci` installs a few packages instead of the whole
// workspace's 500.
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";

const [mode, ...args] = process.argv.slice(2);
const readJson = (p) => JSON.parse(readFileSync(p, "utf8"));
const writeJson = (p, v) => writeFileSync(p, `${JSON.stringify(v, null, 2)}\n`);
const lock = readJson("package-lock.json");
const npmCi = (...extra) =>
  execFileSync("npm", ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error", ...extra], {
    stdio: "inherit",
  });

/** Node's resolution over the lock: where `name` required from the package at `from` is found. */
function resolveIn(from, name) {
  let base = from;
  for (;;) {
    const candidate = `${base ? `${base}/` : ""}node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (base === "") return undefined;
    const i = base.lastIndexOf("/node_modules/");
    base = i >= 0 ? base.slice(0, i) : "";
  }
}

/** Lock paths of every package reachable from `names` required at `from` (dependencies, optional, peer). */
function closure(from, names) {
  const reachable = new Set();
  const queue = [];
  const visit = (at, name) => {
    const p = resolveIn(at, name);
    if (p && !reachable.has(p)) {
      reachable.add(p);
      queue.push(p);
    }
  };
  for (const name of names) visit(from, name);
  while (queue.length > 0) {
    const at = queue.pop();
    const e = lock.packages[at];
    for (const name of Object.keys({ ...e.dependencies, ...e.optionalDependencies, ...e.peerDependencies })) {
      visit(at, name);
    }
  }
  return reachable;
}

const depNames = (e) => Object.keys({ ...e.dependencies, ...e.optionalDependencies, ...e.peerDependencies });

/** Every installed package folder under dir, as lock paths (node_modules/a, node_modules/a/node_modules/@s/b). */
function installed(dir, out = []) {
  const nm = join(dir, "node_modules");
  if (!existsSync(nm)) return out;
  for (const name of readdirSync(nm)) {
    if (name.startsWith(".")) continue;
    const names = name.startsWith("@") ? readdirSync(join(nm, name)).map((n) => `${name}/${n}`) : [name];
    for (const n of names) {
      out.push(join(nm, n));
      installed(join(nm, n), out);
    }
  }
  return out;
}

function prod(ws) {
  const pkgPath = join(ws, "package.json");
  const pkg = readJson(pkgPath);
  if (!lock.packages[ws]) throw new Error(`${ws} is not a workspace in package-lock.json`);
  delete pkg.devDependencies;
  delete lock.packages[ws].devDependencies;
  writeJson(pkgPath, pkg);
  writeJson("package-lock.json", lock);
  npmCi("--omit=dev", `--workspace=${ws}`);

  // Links to the workspaces themselves (node_modules/@vibetalk/*): the bundle already holds our code.
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (entry.link) rmSync(path, { force: true, recursive: true });
  }
  const reachable = closure(ws, depNames(lock.packages[ws]));
  const tools = new Set([
    "typescript",
    "eslint",
    "prettier",
    "tsx",
    "esbuild",
    "playwright-core",
    "fast-check",
  ]);
  const present = [...installed("."), ...installed(ws)];
  const bad = present.filter(
    (p) => !reachable.has(p) || tools.has(p.slice(p.lastIndexOf("node_modules/") + 13)),
  );
  if (bad.length > 0) {
    console.error(`image-deps: installed but not production dependencies of ${ws}:`);
    for (const p of bad) console.error(`  ${p}`);
    process.exit(1);
  }

  // Type declarations and source maps: nothing loads them without a compiler or --enable-source-maps.
  let removed = 0;
  const prune = (dir) => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, d.name);
      if (d.isDirectory()) prune(p);
      else if (/\.d\.[cm]?ts$|\.[cm]?js\.map$|\.d\.[cm]?ts\.map$/.test(d.name)) {
        rmSync(p);
        removed++;
      }
    }
  };
  for (const dir of ["node_modules", join(ws, "node_modules")]) if (existsSync(dir)) prune(dir);
  rmSync("node_modules/.bin", { force: true, recursive: true });
  console.log(
    `image-deps: ${present.length} packages, all production dependencies of ${ws}; removed ${removed} .d.ts/.map files`,
  );
}

function tools(names) {
  const root = readJson("package.json");
  const specs = Object.fromEntries(names.map((n) => [n, root.devDependencies?.[n]]));
  for (const [n, spec] of Object.entries(specs))
    if (!spec) throw new Error(`${n} is not a root devDependency`);
  const keep = closure("", names);
  const packages = { "": { name: root.name, version: root.version, devDependencies: specs } };
  for (const p of [...keep].sort()) packages[p] = lock.packages[p];
  // The workspaces, as npm links them, so that bundling resolves @vibetalk/* to their sources.
  const workspaces = Object.entries(lock.packages).filter(
    ([p, e]) => e.link && p.startsWith("node_modules/"),
  );
  writeJson("package.json", {
    name: root.name,
    version: root.version,
    private: true,
    devDependencies: specs,
  });
  writeJson("package-lock.json", { ...lock, packages });
  npmCi();
  for (const [p, e] of workspaces) {
    mkdirSync(dirname(p), { recursive: true });
    symlinkSync(relative(dirname(p), e.resolved), p);
  }
  console.log(
    `image-deps: ${keep.size} packages for ${names.join(", ")}; ${workspaces.length} workspace links`,
  );
}

if (mode === "prod" && args.length === 1) prod(args[0].replace(/\/+$/, ""));
else if (mode === "tools" && args.length > 0) tools(args);
else {
  console.error("usage: node scripts/image-deps.mjs prod <workspace> | tools <root devDependency>...");
  process.exit(2);
}
