/**
 * The external.metrics.k8s.io/v1beta1 API the HPA reads (pure parts): discovery documents, label
 * selectors and the ExternalMetricValueList of `vibetalk_connections`, labelled `cluster=<name>`.
 */
import { CONNECTIONS_METRIC, METRIC_CLUSTER_LABEL } from "../resources/hpa.js";

export const EXTERNAL_METRICS_GROUP = "external.metrics.k8s.io";
export const EXTERNAL_METRICS_VERSION = "v1beta1";
export const EXTERNAL_METRICS_GV = `${EXTERNAL_METRICS_GROUP}/${EXTERNAL_METRICS_VERSION}`;

export function apiGroup() {
  const gv = { groupVersion: EXTERNAL_METRICS_GV, version: EXTERNAL_METRICS_VERSION };
  return {
    kind: "APIGroup",
    apiVersion: "v1",
    name: EXTERNAL_METRICS_GROUP,
    versions: [gv],
    preferredVersion: gv,
  };
}

export function apiResourceList() {
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: EXTERNAL_METRICS_GV,
    resources: [
      {
        name: CONNECTIONS_METRIC,
        singularName: "",
        namespaced: true,
        kind: "ExternalMetricValueList",
        verbs: ["get"],
      },
    ],
  };
}

export type Requirement =
  { key: string; op: "in" | "notin"; values: string[] } | { key: string; op: "exists" | "!exists" };

/** Parses a label selector string (`a=b,c!=d,e in (f,g),h,!i`); throws on syntax errors. */
export function parseLabelSelector(selector: string): Requirement[] {
  const terms = selector.match(/[^,(]+(\([^)]*\))?/g) ?? [];
  return terms
    .map((t) => t.trim())
    .filter((t) => t !== "")
    .map((t): Requirement => {
      let m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(t);
      if (m?.[1] !== undefined && m[2] !== undefined && m[3] !== undefined) {
        return { key: m[1], op: m[2] === "!=" ? "notin" : "in", values: [m[3]] };
      }
      m = /^([\w./-]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(t);
      if (m?.[1] !== undefined && m[3] !== undefined) {
        const values = m[3]
          .split(",")
          .map((v) => v.trim())
          .filter((v) => v !== "");
        return { key: m[1], op: m[2] === "notin" ? "notin" : "in", values };
      }
      m = /^(!?)([\w./-]+)$/.exec(t);
      if (m?.[2] !== undefined) return { key: m[2], op: m[1] === "!" ? "!exists" : "exists" };
      throw new Error(`invalid label selector term "${t}"`);
    });
}

export function matches(labels: Record<string, string>, requirements: Requirement[]): boolean {
  return requirements.every((r) => {
    const v = labels[r.key];
    switch (r.op) {
      case "in":
        return v !== undefined && r.values.includes(v);
      case "notin":
        return v === undefined || !r.values.includes(v);
      case "exists":
        return v !== undefined;
      case "!exists":
        return v === undefined;
    }
  });
}

export interface ClusterConnections {
  cluster: string;
  connections: number;
}

/** One item per ChatCluster of the namespace whose labels match the selector. */
export function externalMetricValueList(clusters: ClusterConnections[], selector: string, now: Date) {
  const requirements = parseLabelSelector(selector);
  const timestamp = now.toISOString().replace(/\.\d{3}Z$/, "Z");
  return {
    kind: "ExternalMetricValueList",
    apiVersion: EXTERNAL_METRICS_GV,
    metadata: {},
    items: clusters
      .filter((c) => matches({ [METRIC_CLUSTER_LABEL]: c.cluster }, requirements))
      .sort((a, b) => (a.cluster < b.cluster ? -1 : 1))
      .map((c) => ({
        metricName: CONNECTIONS_METRIC,
        metricLabels: { [METRIC_CLUSTER_LABEL]: c.cluster },
        timestamp,
        value: String(c.connections),
      })),
  };
}
