import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";

/** A markdown table. */
export function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/**
 * Replaces the `## heading` section of a markdown file (up to the next `## ` heading or the end) with
 * `body`, or appends it; `head` replaces everything before the first `## ` heading when given.
 */
export async function writeSection(
  file: string,
  section: { heading: string; body: string } | null,
  head?: string,
): Promise<void> {
  const text = existsSync(file) ? await readFile(file, "utf8") : "";
  const parts = text.split(/^(?=## )/m);
  const preamble = parts[0]?.startsWith("## ") ? "" : (parts.shift() ?? "");
  let sections = parts;
  if (section) {
    const block = `## ${section.heading}\n\n${section.body.trim()}\n\n`;
    const i = sections.findIndex((s) => s.startsWith(`## ${section.heading}\n`));
    if (i >= 0) sections[i] = block;
    else sections = [...sections.map((s) => (s.endsWith("\n\n") ? s : `${s.trimEnd()}\n\n`)), block];
  }
  const top = head !== undefined ? `${head.trim()}\n\n` : preamble;
  await writeFile(file, `${top}${sections.join("")}`.trimEnd() + "\n");
}

/** `--name=value` from argv. */
export function flag(argv: string[], name: string): string | undefined {
  const f = argv.find((a) => a.startsWith(`--${name}=`));
  return f?.slice(name.length + 3);
}

export const median = (xs: number[]): number => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};

export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : "–");
