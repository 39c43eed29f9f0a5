/**
 * ChatCluster, vibetalk.io/v1alpha1: the one source of truth for the CRD schema and the operator's
 * types. `crds/chatcluster.yaml` is generated from `chatClusterSchema` (see ../crd/generate.ts).
 */
import type { PartitionAssignment as WirePartitionAssignment } from "@vibetalk/protocol/cluster";
import {
  arrayOf,
  bool,
  int,
  intOrString,
  mapOf,
  obj,
  oneOf,
  str,
  type Input,
  type Static,
} from "./schema.js";

export const GROUP = "vibetalk.io";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "ChatCluster";
export const PLURAL = "chatclusters";
export const SINGULAR = "chatcluster";
export const SHORT_NAMES = ["cc"] as const;
export const LIST_KIND = "ChatClusterList";

/**
 * The longest cluster name: Services are named `<name>` and `<name>-headless` and must be DNS-1035
 * labels of at most 63 characters.
 */
export const MAX_NAME_LENGTH = 54;
export const NAME_PATTERN = "^[a-z]([-a-z0-9]*[a-z0-9])?$";

const QUANTITY_PATTERN =
  "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$";
const DURATION_PATTERN = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$";
const DNS_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const SECRET_KEY = "^[-._a-zA-Z0-9]+$";

const immutable = (field: string) => [{ rule: "self == oldSelf", message: `${field} is immutable` }];

const secretKeySelector = (what: string, defaultKey: string) =>
  obj(
    {
      name: str({
        description: "Name of a Secret in the ChatCluster's namespace.",
        minLength: 1,
        maxLength: 253,
        pattern: DNS_SUBDOMAIN,
      }),
      key: str({
        description: `Key in that Secret (default ${defaultKey}).`,
        default: defaultKey,
        minLength: 1,
        maxLength: 253,
        pattern: SECRET_KEY,
      }),
    },
    { description: `The Secret key holding ${what}.`, required: ["name"] },
  );

const backingService = (what: string) =>
  obj(
    { secretRef: secretKeySelector(`the ${what} URL`, "url") },
    { description: `How chat-nodes reach ${what}.`, required: ["secretRef"] },
  );

const quantities = mapOf(intOrString({ pattern: QUANTITY_PATTERN }));

/** One direction of the HPA's behavior (autoscaling/v2 HPAScalingRules). */
const scalingRules = (direction: string, window: number, policies: string) =>
  obj(
    {
      stabilizationWindowSeconds: int({
        description: `Seconds of past recommendations the HPA considers before scaling ${direction} (default ${window}).`,
        default: window,
        minimum: 0,
        maximum: 3600,
      }),
      selectPolicy: oneOf(["Max", "Min", "Disabled"] as const, {
        description: "Which policy wins when several apply (Disabled: never scale in this direction).",
        default: "Max",
      }),
      policies: arrayOf(
        obj(
          {
            type: oneOf(["Pods", "Percent"] as const),
            value: int({ minimum: 1, maximum: 10000 }),
            periodSeconds: int({ minimum: 1, maximum: 1800 }),
          },
          { required: ["type", "value", "periodSeconds"] },
        ),
        { description: `How fast to scale ${direction}; absent: ${policies}.`, maxItems: 8 },
      ),
    },
    { description: `Scaling ${direction}.`, default: {} },
  );

export const autoscalingSchema = obj(
  {
    enabled: bool({
      description:
        "Scale the chat-node Deployment with an HPA on live connections; spec.replicas is ignored while on.",
      default: false,
    }),
    minReplicas: int({ description: "Lower bound of the HPA.", default: 2, minimum: 1, maximum: 1000 }),
    maxReplicas: int({ description: "Upper bound of the HPA.", default: 10, minimum: 1, maximum: 1000 }),
    targetConnectionsPerPod: int({
      description: "Average live connections per pod the HPA aims at (external metric vibetalk_connections).",
      default: 5000,
      minimum: 1,
      maximum: 1000000,
    }),
    behavior: obj(
      {
        scaleUp: scalingRules("up", 0, "double the pods or add 4, whichever is more, every 15 s"),
        scaleDown: scalingRules("down", 600, "one pod a minute"),
      },
      {
        description:
          "The HPA's behavior, tuned for connection surges: scale up at once and fast, scale down only after 10 minutes of lower load and one pod a minute (every removed pod drains its users onto the others).",
        default: {},
      },
    ),
  },
  {
    default: {},
    validations: [
      {
        rule: "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
        message: "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
      },
    ],
  },
);

/** Connection balance after a scale-out (docs/operator.md, "Connection balance"; decision 36). */
export const rebalanceSchema = obj(
  {
    enabled: bool({
      description:
        "Ask chat-nodes well above the average connection count to shed a bounded part of their sockets (they reconnect, with jitter, to less-loaded pods); off by default.",
      default: false,
    }),
    tolerancePercent: int({
      description:
        "A pod within ± this percentage of the average is balanced and sheds nothing (default 20).",
      default: 20,
      minimum: 1,
      maximum: 100,
    }),
    maxShedPercent: int({
      description: "At most this percentage of a pod's sockets is shed per round (default 20).",
      default: 20,
      minimum: 1,
      maximum: 50,
    }),
    intervalSeconds: int({
      description:
        "Minimum seconds between two rounds (default 15); at least jitterSeconds + 5, so that the counts of the last round are reported before the next.",
      default: 15,
      minimum: 5,
      maximum: 3600,
    }),
    jitterSeconds: int({
      description:
        "A round's sockets are asked to reconnect at random moments over this many seconds (default 5).",
      default: 5,
      minimum: 0,
      maximum: 300,
    }),
    maxReconnectsPerSecond: int({
      description:
        "A round sheds at most this many sockets per second of its jitter window, over all pods (default 50): the reconnect rate a round may cause.",
      default: 50,
      minimum: 1,
      maximum: 100000,
    }),
  },
  {
    description:
      "Connection-aware balance: after a scale-out the pods above the band shed sockets towards the average, a bounded fraction per round, never during a drain or rollout.",
    default: {},
    validations: [
      {
        rule: "!has(self.intervalSeconds) || !has(self.jitterSeconds) || self.intervalSeconds >= self.jitterSeconds + 5",
        message: "rebalance.intervalSeconds must be at least rebalance.jitterSeconds + 5",
      },
    ],
  },
);

const labelSelector = (description: string) =>
  obj(
    {
      matchLabels: mapOf(str({ maxLength: 63 })),
      matchExpressions: arrayOf(
        obj(
          {
            key: str({ minLength: 1, maxLength: 317 }),
            operator: oneOf(["In", "NotIn", "Exists", "DoesNotExist"] as const),
            values: arrayOf(str({ maxLength: 63 }), { maxItems: 64 }),
          },
          { required: ["key", "operator"] },
        ),
        { maxItems: 16 },
      ),
    },
    { description },
  );

/** A networking.k8s.io/v1 NetworkPolicyPeer. */
const networkPeer = obj(
  {
    podSelector: labelSelector("Pods (in the selected namespaces, else in the ChatCluster's)."),
    namespaceSelector: labelSelector("Namespaces ({} for all)."),
    ipBlock: obj(
      {
        cidr: str({ minLength: 1, maxLength: 64 }),
        except: arrayOf(str({ minLength: 1, maxLength: 64 }), { maxItems: 32 }),
      },
      { description: "Addresses (CIDR) outside the pod network.", required: ["cidr"] },
    ),
  },
  {
    description: "A NetworkPolicy peer: ipBlock alone, or pod and/or namespace selectors.",
    validations: [
      {
        rule: "!has(self.ipBlock) || !(has(self.podSelector) || has(self.namespaceSelector))",
        message: "a peer is either an ipBlock or selectors, not both",
      },
    ],
  },
);
const peers = (description: string) => arrayOf(networkPeer, { description, maxItems: 32 });
const egressTarget = (what: string, ports: number[]) =>
  obj(
    {
      ports: arrayOf(int({ minimum: 1, maximum: 65535 }), {
        description: `Destination ports (default ${ports.join(", ")}).`,
        maxItems: 16,
      }),
      to: peers("Destinations; empty or absent: any address on those ports."),
    },
    { description: `Egress to ${what}.`, default: {} },
  );

export const networkPolicySchema = obj(
  {
    enabled: bool({
      description:
        "Create a NetworkPolicy `<name>-chat-node` for the chat-node pods: ingress on the client port from clientFrom and on the operations port from metricsFrom; egress only to the backing services, the API server and DNS. Needs a network plugin that enforces NetworkPolicy.",
      default: false,
    }),
    clientFrom: peers("Sources allowed on the client port (8080); empty or absent: any."),
    metricsFrom: peers(
      "Sources allowed on the operations port (9090: /metrics, /readyz, /internal/*); absent: pods of the namespace labelled kubernetes.io/metadata.name=monitoring; empty: none (the node's own probes are allowed by every common plugin).",
    ),
    egress: obj(
      {
        rabbitmq: egressTarget("RabbitMQ", [5672]),
        redis: egressTarget("Redis", [6379]),
        mongodb: egressTarget("MongoDB", [27017]),
        apiServer: egressTarget(
          "the Kubernetes API server (after Service translation: its own address and port)",
          [443, 6443],
        ),
        dns: egressTarget("DNS (UDP and TCP)", [53]),
        push: egressTarget(
          "the push gateway and Web Push services, only while spec.push sets either (default ports: 443 and the gateway URL's own)",
          [443],
        ),
      },
      { description: "Where chat-nodes may connect; nothing else is allowed.", default: {} },
    ),
  },
  { description: "The chat-nodes' NetworkPolicy.", default: {} },
);

export const chatClusterSpecSchema = obj(
  {
    image: str({
      description:
        "chat-node container image; absent: the chat-node of the operator's own version (the operator's CHAT_NODE_IMAGE, default localhost/vibetalk/chat-node:<operator version>).",
      minLength: 1,
      maxLength: 1024,
    }),
    replicas: int({
      description: "chat-node pods when autoscaling is off (also the scale subresource).",
      default: 2,
      minimum: 0,
      maximum: 1000,
    }),
    autoscaling: autoscalingSchema,
    rebalance: rebalanceSchema,
    partitions: int({
      description: "Number of message partitions P; fixed at creation.",
      default: 64,
      minimum: 1,
      maximum: 1024,
      validations: immutable("partitions"),
    }),
    userExchanges: int({
      description: "Number of user exchanges U; fixed at creation.",
      default: 16,
      minimum: 1,
      maximum: 1024,
      validations: immutable("userExchanges"),
    }),
    rabbitmq: backingService("RabbitMQ"),
    redis: backingService("Redis"),
    mongodb: backingService("MongoDB"),
    jwtSecretRef: secretKeySelector("the JWT signing secret (at least 32 bytes)", "secret"),
    jwtPreviousSecretRef: secretKeySelector(
      "the JWT secret before a rotation, still accepted for verifying until the old tokens expire (docs/security.md)",
      "previous",
    ),
    trustedProxies: arrayOf(str({ minLength: 1, maxLength: 64 }), {
      description:
        "Addresses or CIDRs of the proxies (the ingress controller) whose X-Forwarded-For chat-nodes believe; none by default (TRUST_PROXY, docs/security.md).",
      maxItems: 32,
    }),
    largeChannelMembers: int({
      description:
        'A group with this many members becomes a large channel: delivered once per chat-node holding members, typing not shown, receipts as counts (LARGE_CHANNEL_MEMBERS, docs/chat-node.md, "Large channels").',
      default: 100,
      minimum: 2,
      maximum: 1000000,
    }),
    officialGroup: obj(
      {
        enabled: bool({
          description:
            "Create the official group at start and make every account a member (OFFICIAL_GROUP, docs/chat-node.md).",
          default: true,
        }),
        name: str({
          description:
            "Its name at creation and its service sender's display name (OFFICIAL_GROUP_NAME); later renames are its admins'.",
          default: "VibeTalk",
          minLength: 1,
          maxLength: 100,
        }),
        posting: oneOf(["admins", "everyone"] as const, {
          description:
            "Who may post at creation (OFFICIAL_POSTING); afterwards its admins decide (docs/protocol.md).",
          default: "admins",
        }),
        serviceTokenRef: secretKeySelector(
          "the bearer token of scripts posting as the official group's service (at least 32 bytes; OFFICIAL_SERVICE_TOKEN, docs/security.md)",
          "token",
        ),
      },
      { description: "The installation's official group.", default: {} },
    ),
    push: obj(
      {
        gatewayUrl: str({
          description:
            "The push gateway's notify URL, Matrix push gateway style (PUSH_GATEWAY_URL, docs/chat-node.md); unset: no gateway notifications.",
          minLength: 8,
          maxLength: 2048,
          pattern: "^https?://",
        }),
        vapidPublicKeyRef: secretKeySelector(
          "the VAPID public key for Web Push (PUSH_VAPID_PUBLIC_KEY; with the private key and the subject, or none)",
          "publicKey",
        ),
        vapidPrivateKeyRef: secretKeySelector(
          "the VAPID private key for Web Push (PUSH_VAPID_PRIVATE_KEY)",
          "privateKey",
        ),
        vapidSubject: str({
          description:
            "The VAPID subject: a mailto: or https: contact for push services (PUSH_VAPID_SUBJECT).",
          minLength: 8,
          maxLength: 256,
          pattern: "^(mailto:|https://)",
        }),
        minIntervalSeconds: int({
          description:
            "At most one notification per user and channel per this many seconds (PUSH_MIN_INTERVAL_SECONDS).",
          default: 60,
          minimum: 0,
          maximum: 86400,
        }),
      },
      {
        description:
          'Offline notifications (docs/chat-node.md, "Push notifications"): a push gateway, Web Push, or both; off when neither is set.',
        default: {},
        validations: [
          {
            rule: "has(self.vapidPublicKeyRef) == has(self.vapidPrivateKeyRef) && has(self.vapidPublicKeyRef) == has(self.vapidSubject)",
            message: "vapidPublicKeyRef, vapidPrivateKeyRef and vapidSubject are set together, or none",
          },
        ],
      },
    ),
    resources: obj(
      { limits: quantities, requests: quantities },
      { description: "Compute resources of the chat-node container (corev1 ResourceRequirements)." },
    ),
    service: obj(
      {
        type: oneOf(["ClusterIP", "NodePort", "LoadBalancer"] as const, {
          description: "Type of the client Service.",
          default: "ClusterIP",
        }),
        port: int({ description: "Port of the client Service.", default: 80, minimum: 1, maximum: 65535 }),
      },
      { description: "The client-facing Service (session affinity ClientIP).", default: {} },
    ),
    podDisruptionBudget: obj(
      {
        enabled: bool({ description: "Create a PodDisruptionBudget.", default: true }),
        maxUnavailable: intOrString({ description: "Default 1 when neither bound is set." }),
        minAvailable: intOrString({}),
      },
      {
        description:
          "PodDisruptionBudget of the chat-node pods: at most one of maxUnavailable and minAvailable.",
        default: {},
        validations: [
          {
            rule: "!(has(self.maxUnavailable) && has(self.minAvailable))",
            message:
              "set at most one of podDisruptionBudget.maxUnavailable and podDisruptionBudget.minAvailable",
          },
        ],
      },
    ),
    drainSeconds: int({
      description: "Seconds a terminating chat-node has to release partitions and move its sockets.",
      default: 25,
      minimum: 0,
      maximum: 3600,
    }),
    deletionPolicy: oneOf(["Retain", "Delete"] as const, {
      description:
        "Delete removes the cluster's RabbitMQ topology (vibetalk.<name>.*) when the ChatCluster is deleted; Retain keeps it (and its messages).",
      default: "Retain",
    }),
    metrics: obj(
      {
        serviceMonitor: obj(
          {
            enabled: bool({
              description:
                "Create a monitoring.coreos.com/v1 ServiceMonitor (needs the Prometheus operator's CRD).",
              default: false,
            }),
            interval: str({ description: "Scrape interval.", default: "30s", pattern: DURATION_PATTERN }),
            labels: mapOf(str(), {
              description: "Extra labels for the ServiceMonitor (for a Prometheus selector).",
            }),
          },
          { default: {} },
        ),
      },
      { description: "Metrics exposure.", default: {} },
    ),
    networkPolicy: networkPolicySchema,
  },
  {
    description: "Desired state of a VibeTalk chat cluster.",
    required: ["rabbitmq", "redis", "mongodb", "jwtSecretRef"],
  },
);

export const conditionSchema = obj(
  {
    type: str({ maxLength: 316 }),
    status: oneOf(["True", "False", "Unknown"] as const),
    reason: str({ maxLength: 1024 }),
    message: str({ maxLength: 32768 }),
    lastTransitionTime: str({ format: "date-time" }),
    observedGeneration: int({ format: "int64", minimum: 0 }),
  },
  { required: ["type", "status", "reason", "message", "lastTransitionTime"] },
);

export const partitionAssignmentSchema = obj(
  {
    epoch: int({ description: "Increments each time an owner changes.", format: "int64", minimum: 0 }),
    owners: mapOf(str(), {
      description: "Partition number (decimal string) → owning pod name; written as a whole.",
      mapType: "atomic",
    }),
  },
  { required: ["epoch", "owners"] },
);

export const chatClusterStatusSchema = obj(
  {
    observedGeneration: int({ format: "int64" }),
    replicas: int({ description: "chat-node pods (Deployment status)." }),
    readyReplicas: int({}),
    selector: str({ description: "Label selector of the chat-node pods (for the scale subresource)." }),
    connections: int({ description: "Live connections reported by the chat-node pods.", format: "int64" }),
    partitionAssignment: partitionAssignmentSchema,
    conditions: arrayOf(conditionSchema, { listType: "map", listMapKeys: ["type"] }),
  },
  { description: "Observed state, written by the operator." },
);

export const chatClusterSchema = obj(
  {
    apiVersion: str(),
    kind: str(),
    metadata: obj({}),
    spec: chatClusterSpecSchema,
    status: chatClusterStatusSchema,
  },
  {
    required: ["spec"],
    validations: [
      {
        rule: `self.metadata.name.size() <= ${MAX_NAME_LENGTH}`,
        message: `metadata.name must be at most ${MAX_NAME_LENGTH} characters (the chat-node Services are named <name>-headless)`,
      },
      {
        rule: `self.metadata.name.matches('${NAME_PATTERN}')`,
        message:
          "metadata.name must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter",
      },
    ],
  },
);

export type ChatClusterSpec = Static<typeof chatClusterSpecSchema>;
export type ChatClusterSpecInput = Input<typeof chatClusterSpecSchema>;
export type ChatClusterStatus = Static<typeof chatClusterStatusSchema>;
export type Condition = Static<typeof conditionSchema>;
export type ConditionStatus = Condition["status"];
/**
 * The assignment's one type is the chat-nodes' contract (@vibetalk/protocol/cluster); the status schema
 * above must describe exactly it, checked both ways at compile time.
 */
export type PartitionAssignment = WirePartitionAssignment;
type SameType<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type _AssignmentSchemaIsTheContract = Assert<
  SameType<Static<typeof partitionAssignmentSchema>, PartitionAssignment>
>;
type Assert<T extends true> = T;
export type SecretKeySelector = ChatClusterSpec["jwtSecretRef"];
export type DeletionPolicy = ChatClusterSpec["deletionPolicy"];
export type NetworkPolicySpec = ChatClusterSpec["networkPolicy"];

/** Object metadata as the operator reads it (a subset of ObjectMeta). */
export interface ChatClusterMetadata {
  name: string;
  namespace: string;
  uid: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string | Date;
  deletionTimestamp?: string | Date;
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface ChatCluster {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ChatClusterMetadata;
  spec: ChatClusterSpec;
  status?: ChatClusterStatus;
}
