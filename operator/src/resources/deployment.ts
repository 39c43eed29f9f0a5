/** The chat-node Deployment (pure). */
import type {
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1PodSecurityContext,
  V1PodTemplateSpec,
  V1ResourceRequirements,
  V1SecurityContext,
} from "@kubernetes/client-node";
import type { ChatCluster, ChatClusterSpec, SecretKeySelector } from "../api/v1alpha1.js";
import { hashOf } from "./hash.js";
import {
  ANNOTATION_SPEC_HASH,
  ANNOTATION_SPEC_REPLICAS,
  CHAT_NODE_CONTAINER,
  CHAT_NODE_OPS_PORT,
  CHAT_NODE_PORT,
  commonLabels,
  objectMeta,
  ownedNames,
  selectorLabels,
} from "./meta.js";

/** Extra seconds past drainSeconds before the kubelet kills a terminating chat-node. */
export const TERMINATION_MARGIN_SECONDS = 10;

/** The part of the spec the pods depend on; its hash rolls the Deployment when it changes. */
export function podSpecInputs(spec: ChatClusterSpec): unknown {
  return {
    image: spec.image,
    partitions: spec.partitions,
    userExchanges: spec.userExchanges,
    rabbitmq: spec.rabbitmq,
    redis: spec.redis,
    mongodb: spec.mongodb,
    jwtSecretRef: spec.jwtSecretRef,
    jwtPreviousSecretRef: spec.jwtPreviousSecretRef,
    trustedProxies: spec.trustedProxies,
    officialGroup: spec.officialGroup,
    push: spec.push,
    resources: spec.resources,
    drainSeconds: spec.drainSeconds,
  };
}

export function specHash(spec: ChatClusterSpec): string {
  return hashOf(podSpecInputs(spec));
}

const fromSecret = (name: string, ref: SecretKeySelector): V1EnvVar => ({
  name,
  valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } },
});
const fromField = (name: string, fieldPath: string): V1EnvVar => ({
  name,
  valueFrom: { fieldRef: { apiVersion: "v1", fieldPath } },
});

/** The environment contract between the operator and chat-node (docs/operator.md). */
export function chatNodeEnv(cluster: ChatCluster): V1EnvVar[] {
  const { spec } = cluster;
  const names = ownedNames(cluster.metadata.name);
  return [
    { name: "PORT", value: String(CHAT_NODE_PORT) },
    { name: "OPS_PORT", value: String(CHAT_NODE_OPS_PORT) },
    fromField("POD_NAME", "metadata.name"),
    fromField("POD_NAMESPACE", "metadata.namespace"),
    fromField("POD_IP", "status.podIP"),
    { name: "CLUSTER_NAME", value: cluster.metadata.name },
    { name: "PARTITIONS", value: String(spec.partitions) },
    { name: "USER_EXCHANGES", value: String(spec.userExchanges) },
    { name: "PARTITION_ASSIGNMENT", value: "kubernetes" },
    { name: "PARTITIONS_CONFIGMAP", value: names.partitionsConfigMap },
    { name: "RELEASES_CONFIGMAP", value: names.releasesConfigMap },
    { name: "DRAIN_SECONDS", value: String(spec.drainSeconds) },
    fromSecret("RABBITMQ_URL", spec.rabbitmq.secretRef),
    fromSecret("REDIS_URL", spec.redis.secretRef),
    fromSecret("MONGODB_URL", spec.mongodb.secretRef),
    fromSecret("JWT_SECRET", spec.jwtSecretRef),
    ...(spec.jwtPreviousSecretRef ? [fromSecret("JWT_PREVIOUS_SECRET", spec.jwtPreviousSecretRef)] : []),
    ...(spec.trustedProxies?.length ? [{ name: "TRUST_PROXY", value: spec.trustedProxies.join(",") }] : []),
    { name: "LARGE_CHANNEL_MEMBERS", value: String(spec.largeChannelMembers) },
    ...officialGroupEnv(spec.officialGroup),
    ...pushEnv(spec.push),
  ];
}

/** Offline notifications' variables (docs/chat-node.md, "Push notifications"); none: push off. */
function pushEnv(p: ChatClusterSpec["push"]): V1EnvVar[] {
  const out: V1EnvVar[] = [];
  if (p?.gatewayUrl) out.push({ name: "PUSH_GATEWAY_URL", value: p.gatewayUrl });
  if (p?.vapidPublicKeyRef && p.vapidPrivateKeyRef && p.vapidSubject)
    out.push(
      fromSecret("PUSH_VAPID_PUBLIC_KEY", p.vapidPublicKeyRef),
      fromSecret("PUSH_VAPID_PRIVATE_KEY", p.vapidPrivateKeyRef),
      { name: "PUSH_VAPID_SUBJECT", value: p.vapidSubject },
    );
  if (out.length > 0 && p?.minIntervalSeconds !== undefined)
    out.push({ name: "PUSH_MIN_INTERVAL_SECONDS", value: String(p.minIntervalSeconds) });
  return out;
}

/** The official group's variables (docs/chat-node.md, "The official group"). */
function officialGroupEnv(o: ChatClusterSpec["officialGroup"]): V1EnvVar[] {
  if (!o?.enabled) return [{ name: "OFFICIAL_GROUP", value: "false" }];
  return [
    { name: "OFFICIAL_GROUP", value: "true" },
    { name: "OFFICIAL_GROUP_NAME", value: o.name },
    { name: "OFFICIAL_POSTING", value: o.posting },
    ...(o.serviceTokenRef ? [fromSecret("OFFICIAL_SERVICE_TOKEN", o.serviceTokenRef)] : []),
  ];
}

type Quantities = Record<string, string | number> | undefined;
const quantityStrings = (q: Quantities): Record<string, string> | undefined =>
  q === undefined ? undefined : Object.fromEntries(Object.entries(q).map(([k, v]) => [k, String(v)]));

/**
 * Requests and limits of a chat-node whose spec gives no `resources` at all. A spec that gives any is
 * taken as it is (a default limit below a request the user set would make the pod invalid). No CPU
 * limit: throttling adds latency to every socket of the pod, while memory is what must be bounded.
 */
export const DEFAULT_CHAT_NODE_RESOURCES = {
  requests: { cpu: "250m", memory: "256Mi" },
  limits: { memory: "1Gi" },
} as const;

/** corev1 ResourceRequirements carry quantities as strings; the CRD accepts integers too. */
export function resourceRequirements(r: ChatClusterSpec["resources"]): V1ResourceRequirements {
  if (r?.limits === undefined && r?.requests === undefined)
    return {
      requests: { ...DEFAULT_CHAT_NODE_RESOURCES.requests },
      limits: { ...DEFAULT_CHAT_NODE_RESOURCES.limits },
    };
  const out: V1ResourceRequirements = {};
  const limits = quantityStrings(r?.limits);
  const requests = quantityStrings(r?.requests);
  if (limits) out.limits = limits;
  if (requests) out.requests = requests;
  return out;
}

function chatNodeContainer(cluster: ChatCluster): V1Container {
  const { spec } = cluster;
  return {
    name: CHAT_NODE_CONTAINER,
    image: spec.image,
    ports: [
      { name: "http", containerPort: CHAT_NODE_PORT, protocol: "TCP" },
      { name: "ops", containerPort: CHAT_NODE_OPS_PORT, protocol: "TCP" },
    ],
    env: chatNodeEnv(cluster),
    resources: resourceRequirements(spec.resources),
    readinessProbe: {
      httpGet: { path: "/readyz", port: "ops" },
      periodSeconds: 5,
      timeoutSeconds: 2,
      failureThreshold: 2,
    },
    livenessProbe: {
      httpGet: { path: "/healthz", port: "ops" },
      initialDelaySeconds: 10,
      periodSeconds: 10,
      timeoutSeconds: 3,
      failureThreshold: 3,
    },
    securityContext: containerSecurityContext(),
  };
}

/**
 * Every container the operator runs: no root, no privilege escalation, no capabilities, a read-only
 * root file system (chat-node writes nothing: uploads stream to the store), RuntimeDefault seccomp.
 */
export function containerSecurityContext(): V1SecurityContext {
  return {
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

export function podSecurityContext(): V1PodSecurityContext {
  return { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } };
}

function podTemplate(cluster: ChatCluster): V1PodTemplateSpec {
  const name = cluster.metadata.name;
  return {
    metadata: {
      labels: { ...commonLabels(name, "chat-node"), ...selectorLabels(name) },
      annotations: { [ANNOTATION_SPEC_HASH]: specHash(cluster.spec) },
    },
    spec: {
      serviceAccountName: ownedNames(name).serviceAccount,
      terminationGracePeriodSeconds: cluster.spec.drainSeconds + TERMINATION_MARGIN_SECONDS,
      containers: [chatNodeContainer(cluster)],
      securityContext: podSecurityContext(),
      affinity: {
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 100,
              podAffinityTerm: {
                topologyKey: "kubernetes.io/hostname",
                labelSelector: { matchLabels: selectorLabels(name) },
              },
            },
          ],
        },
      },
    },
  };
}

/**
 * With autoscaling on, `replicas` is left out so that the HPA owns it (server-side apply never fights
 * another manager for a field it does not set), except when the Deployment is created (`initialReplicas`:
 * it starts at minReplicas instead of the default 1); the hand-over is in ../controller/replicas.ts. The
 * annotation `vibetalk.io/spec-replicas` records the spec's replicas meanwhile, so that turning
 * autoscaling off can tell a count the user set in that change from the one they had before.
 */
export function buildDeployment(cluster: ChatCluster, o: { initialReplicas?: number } = {}): V1Deployment {
  const name = cluster.metadata.name;
  const autoscaled = cluster.spec.autoscaling.enabled;
  const meta = objectMeta(cluster, ownedNames(name).deployment, "chat-node");
  if (autoscaled) meta.annotations = { [ANNOTATION_SPEC_REPLICAS]: String(cluster.spec.replicas) };
  const replicas = autoscaled ? o.initialReplicas : cluster.spec.replicas;
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta,
    spec: {
      ...(replicas === undefined ? {} : { replicas }),
      revisionHistoryLimit: 5,
      selector: { matchLabels: selectorLabels(name) },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: podTemplate(cluster),
    },
  };
}
