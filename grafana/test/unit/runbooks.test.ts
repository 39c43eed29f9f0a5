/**
 * Every alert's runbook link resolves: its `runbook_url` or `runbook` annotation names a file under docs/
 * and an anchor that is one of that file's headings (as GitHub makes anchors), and the section it opens
 * says what to do.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { alertRules } from "../support/observability.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** Each heading's anchor and the text of its section (up to the next heading of the same or a higher level). */
function sections(markdown: string): Map<string, string> {
  const lines = markdown.split("\n");
  const out = new Map<string, string>();
  lines.forEach((line, i) => {
    const m = /^(#{1,6})\s+(.*)$/.exec(line);
    if (!m) return;
    const level = m[1]!.length;
    const end = lines.findIndex((l, j) => j > i && /^(#{1,6})\s/.test(l) && l.indexOf(" ") <= level);
    out.set(anchorOf(m[2]!), lines.slice(i + 1, end === -1 ? undefined : end).join("\n"));
  });
  return out;
}

test("anchors are made as GitHub makes them", () => {
  assert.equal(anchorOf("VibeTalkNoChatNodeReady"), "vibetalknochatnodeready");
  assert.equal(anchorOf("The recording rule"), "the-recording-rule");
  assert.equal(anchorOf("Scaling on connections (HPA)"), "scaling-on-connections-hpa");
});

test("every alert links to a heading of a file under docs/ whose section says what to do", async () => {
  const rules = await alertRules();
  assert.ok(rules.length > 0);
  const docs = new Map<string, Map<string, string>>();
  for (const r of rules) {
    const link = r.annotations?.runbook_url ?? r.annotations?.runbook;
    assert.ok(link, `${r.alert}: a runbook_url or runbook annotation`);
    const [file = "", anchor = ""] = link.split("#");
    assert.ok(
      file?.startsWith("docs/") && file.endsWith(".md") && anchor,
      `${r.alert}: docs/<file>.md#<anchor>`,
    );
    if (!docs.has(file)) {
      const text = await readFile(join(ROOT, file), "utf8").catch(() => undefined);
      assert.ok(text !== undefined, `${r.alert}: ${file} exists`);
      docs.set(file, sections(text));
    }
    const section = docs.get(file)?.get(anchor);
    assert.ok(section !== undefined, `${r.alert}: ${file} has a heading whose anchor is #${anchor}`);
    assert.match(section, /What to do:/, `${r.alert}: its runbook says what to do`);
  }
});
