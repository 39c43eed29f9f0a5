/** The operator install bundle (manifests/operator.yaml), built from code (pure). */
import type { KubernetesObject } from "@kubernetes/client-node";
import { containerSecurityContext, podSecurityContext } from "../resources/deployment.js";
import { chatNodePodPolicy } from "./admission.js";
import { operatorLeaseRules, operatorRules } from "./rbac.js";

export interface BundleOptions {
  /**
   * Watch ChatClusters in this namespace only (WATCH_NAMESPACE): the operator's rights become a Role
   * and a RoleBinding there, and it holds nothing cluster-wide. Absent: all namespaces, a ClusterRole.
   */
  watchNamespace?: string;
  /**
   * Ports the operator's NetworkPolicy lets it reach: the API server as its pods see it after Service
   * translation (default 443 and 6443) and RabbitMQ (default 5672).
   */
  egressPorts?: { apiServer?: number[]; rabbitmq?: number[] };
}

export const OPERATOR_NAMESPACE = "vibetalk-system";
export const OPERATOR_NAME = "vibetalk-operator";
/**
 * The images scripts/images builds (see docs/install.md for loading them into a cluster or pushing them to
 * a registry); nothing is published under these names, so a pull is never attempted for them.
 */
export const OPERATOR_IMAGE = "localhost/vibetalk/operator:0.1.0";
export const LEASE_NAME = "vibetalk-operator";

const labels = {
  "app.kubernetes.io/name": "vibetalk",
  "app.kubernetes.io/component": "operator",
  "app.kubernetes.io/part-of": "vibetalk",
};
const selector = { "app.kubernetes.io/name": "vibetalk", "app.kubernetes.io/component": "operator" };
const meta = (name: string, namespace?: string) => ({ name, ...(namespace ? { namespace } : {}), labels });
const sa = { kind: "ServiceAccount", name: OPERATOR_NAME, namespace: OPERATOR_NAMESPACE };

/** The operator's rights: cluster-wide when it watches every namespace, else in its one namespace. */
function operatorRole(watchNamespace: string | undefined): KubernetesObject[] {
  const [role, binding] = watchNamespace ? ["Role", "RoleBinding"] : ["ClusterRole", "ClusterRoleBinding"];
  return [
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: role,
      metadata: meta(OPERATOR_NAME, watchNamespace),
      rules: operatorRules(),
    } as KubernetesObject,
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: binding,
      metadata: meta(OPERATOR_NAME, watchNamespace),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: role, name: OPERATOR_NAME },
      subjects: [sa],
    } as KubernetesObject,
  ];
}

/** Identity, RBAC and namespace: what the integration tests install to run the operator under. */
export function operatorRbac(o: BundleOptions = {}): KubernetesObject[] {
  return [
    { apiVersion: "v1", kind: "Namespace", metadata: meta(OPERATOR_NAMESPACE) },
    { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(OPERATOR_NAME, OPERATOR_NAMESPACE) },
    ...operatorRole(o.watchNamespace),
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: meta(`${OPERATOR_NAME}-leader-election`, OPERATOR_NAMESPACE),
      rules: operatorLeaseRules(LEASE_NAME),
    } as KubernetesObject,
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta(`${OPERATOR_NAME}-leader-election`, OPERATOR_NAMESPACE),
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "Role",
        name: `${OPERATOR_NAME}-leader-election`,
      },
      subjects: [sa],
    } as KubernetesObject,
    {
      // Read the aggregator's client CA (requestheader-client-ca-file) to authenticate it.
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta(`${OPERATOR_NAME}-auth-reader`, "kube-system"),
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "Role",
        name: "extension-apiserver-authentication-reader",
      },
      subjects: [sa],
    } as KubernetesObject,
  ];
}

function deployment(o: BundleOptions): KubernetesObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(OPERATOR_NAME, OPERATOR_NAMESPACE),
    spec: {
      replicas: 2,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: OPERATOR_NAME,
          securityContext: podSecurityContext(),
          containers: [
            {
              name: "operator",
              image: OPERATOR_IMAGE,
              imagePullPolicy: "IfNotPresent",
              env: [
                { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
                { name: "LEASE_NAME", value: LEASE_NAME },
                { name: "METRICS_PORT", value: "8080" },
                { name: "EXTERNAL_METRICS_PORT", value: "6443" },
                ...(o.watchNamespace ? [{ name: "WATCH_NAMESPACE", value: o.watchNamespace }] : []),
              ],
              ports: [
                { name: "http", containerPort: 8080 },
                { name: "https", containerPort: 6443 },
              ],
              readinessProbe: { httpGet: { path: "/readyz", port: "http" }, periodSeconds: 5 },
              livenessProbe: {
                httpGet: { path: "/healthz", port: "http" },
                initialDelaySeconds: 10,
                periodSeconds: 10,
              },
              resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } },
              securityContext: containerSecurityContext(),
            },
          ],
        },
      },
    },
  } as KubernetesObject;
}

function service(): KubernetesObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(OPERATOR_NAME, OPERATOR_NAMESPACE),
    spec: {
      selector,
      ports: [
        { name: "http", port: 8080, targetPort: "http" },
        { name: "https", port: 443, targetPort: "https" },
      ],
    },
  } as KubernetesObject;
}

/** Registers the operator as the cluster's external metrics API (only one may serve it). */
function apiService(): KubernetesObject {
  return {
    apiVersion: "apiregistration.k8s.io/v1",
    kind: "APIService",
    metadata: meta("v1beta1.external.metrics.k8s.io"),
    spec: {
      group: "external.metrics.k8s.io",
      version: "v1beta1",
      service: { name: OPERATOR_NAME, namespace: OPERATOR_NAMESPACE, port: 443 },
      // The operator serves a self-signed certificate made at start-up; give a caBundle instead when
      // the serving certificate comes from a CA you manage.
      insecureSkipTLSVerify: true,
      groupPriorityMinimum: 100,
      versionPriority: 100,
    },
  } as KubernetesObject;
}

/**
 * The operator's pods: the external metrics API from anywhere (the API server's aggregator, which
 * NetworkPolicy cannot select; it must present a client certificate), /metrics from the namespace
 * `monitoring`; out only to the API server, RabbitMQ (topology clean-up of deletionPolicy Delete) and
 * DNS. The chart makes each of these configurable.
 */
function networkPolicy(o: BundleOptions): KubernetesObject {
  const tcp = (ports: number[]) => ports.map((port) => ({ port, protocol: "TCP" }));
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: meta(OPERATOR_NAME, OPERATOR_NAMESPACE),
    spec: {
      podSelector: { matchLabels: selector },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        { ports: [{ port: 6443, protocol: "TCP" }] },
        {
          ports: [{ port: 8080, protocol: "TCP" }],
          from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }],
        },
      ],
      egress: [
        { ports: tcp(o.egressPorts?.apiServer ?? [443, 6443]) },
        { ports: tcp(o.egressPorts?.rabbitmq ?? [5672]) },
        {
          ports: [
            { port: 53, protocol: "UDP" },
            { port: 53, protocol: "TCP" },
          ],
        },
      ],
    },
  } as KubernetesObject;
}

export function operatorManifests(o: BundleOptions = {}): KubernetesObject[] {
  return [
    ...operatorRbac(o),
    service(),
    deployment(o),
    networkPolicy(o),
    apiService(),
    ...chatNodePodPolicy(undefined, labels),
  ];
}
