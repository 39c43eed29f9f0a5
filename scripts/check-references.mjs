// Lint: the design of record is docs/ (docs/architecture.md). Fails when
//   - a tracked file cites a document outside the repository (the brief VibeTalk grew from and its
//     companions: every comment and doc cites docs/ or an invariant I1–I7 instead), or
//   - a Markdown link in a tracked .md file points at a file that does not exist, or at a heading
//     (#anchor) that file does not have.
// Prints each problem as path:line and exits 1; `node scripts/check-references.mjs` from the root.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize } from "node:path";

const files = execFileSync("git", ["ls-files", "-z"], { encoding: "utf8" }).split("\0").filter(Boolean);
const SELF = "scripts/check-references.mjs";
// Documents outside the repository, by the names they go by.
const OUTSIDE = [/\b(DESIGN|STYLE|PROTOCOL)\.md\b/, /\.\.\/shared\//, /\bseeds\/\d/];
const TEXT =
  /\.(ts|mts|mjs|js|md|ya?ml|tpl|json|sh|txt|html|css|go|env)$|(^|\/)(Containerfile|run|setup|test|up|images|server-images)$/;
const problems = [];

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading) {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[`*_~]/g, "")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/[^\p{L}\p{N}\s-]/gu, "")
    .replace(/\s/g, "-");
}

const anchorCache = new Map();
function anchorsOf(path) {
  let set = anchorCache.get(path);
  if (!set) {
    set = new Set();
    const seen = new Map();
    let fenced = false;
    for (const line of readFileSync(path, "utf8").split("\n")) {
      if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
      const m = !fenced && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
      if (!m) continue;
      const base = slug(m[1]);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      set.add(n === 0 ? base : `${base}-${n}`);
    }
    anchorCache.set(path, set);
  }
  return set;
}

for (const file of files) {
  if (file === SELF || !TEXT.test(file) || file.startsWith("node_modules/")) continue;
  if (!existsSync(file) || statSync(file).isDirectory()) continue;
  const lines = readFileSync(file, "utf8").split("\n");
  let fenced = false;
  lines.forEach((line, i) => {
    for (const re of OUTSIDE) {
      if (re.test(line))
        problems.push(
          `${file}:${i + 1}: cites a document outside the repository (${re.source}); cite docs/ instead`,
        );
    }
    if (!file.endsWith(".md")) return;
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) return;
    for (const m of line.replace(/`[^`]*`/g, "").matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = m[1];
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, mailto:, …
      const [pathPart, anchor] = target.split("#");
      const resolved = pathPart ? normalize(join(dirname(file), decodeURI(pathPart))) : file;
      if (!existsSync(resolved)) {
        problems.push(`${file}:${i + 1}: link to ${target}: no such file`);
        continue;
      }
      if (anchor && resolved.endsWith(".md") && !anchorsOf(resolved).has(anchor.toLowerCase())) {
        problems.push(`${file}:${i + 1}: link to ${target}: ${resolved} has no heading #${anchor}`);
      }
    }
  });
}

if (problems.length > 0) {
  console.error(problems.join("\n"));
  console.error(`check-references: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log(
  `check-references: ${files.length} files, no reference outside the repository, every link resolves`,
);
