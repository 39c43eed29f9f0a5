/**
 * What the Grafana/Prometheus tests share: the dashboards and alert rules as data, the metric names the
 * programs really export (read from their own registries, built without I/O), and a small PromQL reader
 * that finds the metric names an expression uses.
 */
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { load } from "js-yaml";
import { createMetrics as createChatNodeMetrics } from "../../../chat-node/src/metrics.js";
import { createMetrics as createOperatorMetrics } from "../../../operator/src/metrics.js";
import { RULES_FILE, dashboardFiles } from "../../generate.js";

export interface Target {
  refId: string;
  expr: string;
  legendFormat?: string;
  datasource?: { type: string; uid: string };
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}

export interface TemplateVariable {
  name: string;
  type: string;
  query: string | { query: string };
  allValue?: string;
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: TemplateVariable[] };
}

export interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleFile {
  groups: { name: string; rules: AlertRule[] }[];
}

export async function loadDashboards(): Promise<{ file: string; name: string; dashboard: Dashboard }[]> {
  const out = [];
  for (const file of await dashboardFiles()) {
    out.push({
      file,
      name: basename(file),
      dashboard: JSON.parse(await readFile(file, "utf8")) as Dashboard,
    });
  }
  return out;
}

export async function loadRules(): Promise<RuleFile> {
  return load(await readFile(RULES_FILE, "utf8")) as RuleFile;
}

/** Every rule: alerts and recording rules. */
export async function allRules(): Promise<AlertRule[]> {
  return (await loadRules()).groups.flatMap((g) => g.rules);
}

export async function alertRules(): Promise<(AlertRule & { alert: string })[]> {
  return (await allRules()).filter((r): r is AlertRule & { alert: string } => r.alert !== undefined);
}

/** Every PromQL expression of a dashboard: panel targets, and the metric selectors of label_values(). */
export function dashboardQueries(d: Dashboard): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of d.panels)
    for (const t of p.targets ?? [])
      out.push({ where: `${d.uid} panel ${p.id} "${p.title}" ${t.refId}`, expr: t.expr });
  for (const v of d.templating.list) {
    if (v.type !== "query") continue;
    const lv = labelValuesQuery(variableQuery(v));
    if (lv) out.push({ where: `${d.uid} variable ${v.name}`, expr: lv.selector });
  }
  return out;
}

export function variableQuery(v: TemplateVariable): string {
  return typeof v.query === "string" ? v.query : v.query.query;
}

/** Grafana's `label_values(selector, label)`. */
export function labelValuesQuery(query: string): { selector: string; label: string } | undefined {
  const m = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(query.trim());
  return m?.[1] && m[2] ? { selector: m[1].trim(), label: m[2] } : undefined;
}

const KEYWORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "and",
  "or",
  "unless",
  "offset",
  "inf",
  "nan",
]);

/**
 * The metric names a PromQL expression selects. Strings, label matchers, ranges and grouping clauses are
 * removed first; what is left that is an identifier, not a keyword and not a function call is a metric.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()/g)) {
    const name = m[1] ?? "";
    if (!KEYWORDS.has(name.toLowerCase())) names.add(name);
  }
  return [...names];
}

/** Series names a registry exposes: counters and gauges as named, histograms as _bucket, _sum, _count. */
async function exposedNames(
  registry: { getMetricsAsJSON(): Promise<{ name: string; type: unknown }[]> },
  into: Set<string>,
): Promise<void> {
  for (const m of await registry.getMetricsAsJSON()) {
    // prom-client types `type` as an enum; at run time it is the exposition's type name.
    const type = String(m.type);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) into.add(m.name + s);
    else if (type === "summary") for (const s of ["", "_sum", "_count"]) into.add(m.name + s);
    else into.add(m.name);
  }
}

/** Every series name chat-node and the operator export (default process metrics included). */
export async function exportedMetricNames(): Promise<Set<string>> {
  const names = new Set<string>();
  await exposedNames(createChatNodeMetrics("names", { defaultMetrics: true }).registry, names);
  await exposedNames(createOperatorMetrics({ defaultMetrics: true }).registry, names);
  return names;
}

/** Replaces Grafana's variables with values for a test Prometheus. */
export function substituteVariables(expr: string, values: Record<string, string>): string {
  return expr.replace(
    /\$\{?(__rate_interval|__interval|__range|[a-zA-Z_][a-zA-Z0-9_]*)\}?/g,
    (whole, name: string) => {
      const v = values[name];
      if (v === undefined) throw new Error(`no test value for Grafana variable ${whole} in ${expr}`);
      return v;
    },
  );
}
