/**
 * The chat-nodes' NetworkPolicy (pure); absent unless spec.networkPolicy.enabled. Ingress: the client
 * port from clientFrom (default any), the operations port from metricsFrom (default the namespace
 * `monitoring`). Egress: RabbitMQ, Redis, MongoDB, the API server and DNS, and the push services
 * while push is on, each on its ports and to its peers (default any address on those ports); nothing
 * else.
 *
 * client-node's model names an ingress rule's `from` `_from` (its serializer writes it as `from`).
 */
import type {
  V1NetworkPolicy,
  V1NetworkPolicyEgressRule,
  V1NetworkPolicyIngressRule,
  V1NetworkPolicyPeer,
} from "@kubernetes/client-node";
import type { ChatCluster, NetworkPolicySpec } from "../api/v1alpha1.js";
import { CHAT_NODE_OPS_PORT, CHAT_NODE_PORT, objectMeta, ownedNames, selectorLabels } from "./meta.js";

type Peer = NonNullable<NetworkPolicySpec["clientFrom"]>[number];
type EgressTarget = NetworkPolicySpec["egress"]["rabbitmq"];

/** Where Prometheus runs unless metricsFrom says otherwise. */
export const DEFAULT_METRICS_FROM: Peer[] = [
  { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } },
];

export const DEFAULT_EGRESS_PORTS = {
  rabbitmq: [5672],
  redis: [6379],
  mongodb: [27017],
  apiServer: [443, 6443],
  dns: [53],
  push: [443],
} as const satisfies Record<keyof NetworkPolicySpec["egress"], readonly number[]>;

const peersOf = (peers: Peer[]): V1NetworkPolicyPeer[] => peers.map((p) => ({ ...p }));

function egressRule(
  target: EgressTarget,
  defaults: readonly number[],
  protocols: readonly ("TCP" | "UDP")[],
): V1NetworkPolicyEgressRule {
  const ports = (target.ports ?? defaults).flatMap((port) =>
    protocols.map((protocol) => ({ port, protocol })),
  );
  const to = target.to ?? [];
  return to.length > 0 ? { ports, to: peersOf(to) } : { ports };
}

export function chatNodeIngressRules(np: NetworkPolicySpec): V1NetworkPolicyIngressRule[] {
  const clientFrom = np.clientFrom ?? [];
  const client: V1NetworkPolicyIngressRule = {
    ports: [{ port: CHAT_NODE_PORT, protocol: "TCP" }],
    ...(clientFrom.length > 0 ? { _from: peersOf(clientFrom) } : {}),
  };
  const metricsFrom = np.metricsFrom ?? DEFAULT_METRICS_FROM;
  // An ingress rule without `from` admits every source: an empty metricsFrom means no rule at all.
  if (metricsFrom.length === 0) return [client];
  return [client, { ports: [{ port: CHAT_NODE_OPS_PORT, protocol: "TCP" }], _from: peersOf(metricsFrom) }];
}

/**
 * The push rule's default ports: 443 (Web Push services are https) and the gateway URL's own port;
 * no ports at all while push is off (docs/chat-node.md, "Push notifications").
 */
export function pushEgressPorts(push: ChatCluster["spec"]["push"] | undefined): number[] {
  const web = push?.vapidSubject !== undefined;
  const ports = new Set<number>(web ? DEFAULT_EGRESS_PORTS.push : []);
  if (push?.gatewayUrl) {
    const u = new URL(push.gatewayUrl);
    ports.add(u.port ? Number(u.port) : u.protocol === "http:" ? 80 : 443);
  }
  return [...ports];
}

export function chatNodeEgressRules(
  np: NetworkPolicySpec,
  push?: ChatCluster["spec"]["push"],
): V1NetworkPolicyEgressRule[] {
  const e = np.egress;
  const pushPorts = pushEgressPorts(push);
  return [
    egressRule(e.rabbitmq, DEFAULT_EGRESS_PORTS.rabbitmq, ["TCP"]),
    egressRule(e.redis, DEFAULT_EGRESS_PORTS.redis, ["TCP"]),
    egressRule(e.mongodb, DEFAULT_EGRESS_PORTS.mongodb, ["TCP"]),
    egressRule(e.apiServer, DEFAULT_EGRESS_PORTS.apiServer, ["TCP"]),
    egressRule(e.dns, DEFAULT_EGRESS_PORTS.dns, ["UDP", "TCP"]),
    ...(pushPorts.length > 0 ? [egressRule(e.push, pushPorts, ["TCP"])] : []),
  ];
}

export function buildNetworkPolicy(cluster: ChatCluster): V1NetworkPolicy | undefined {
  const np = cluster.spec.networkPolicy;
  if (!np.enabled) return undefined;
  const name = cluster.metadata.name;
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: objectMeta(cluster, ownedNames(name).networkPolicy, "network"),
    spec: {
      podSelector: { matchLabels: selectorLabels(name) },
      policyTypes: ["Ingress", "Egress"],
      ingress: chatNodeIngressRules(np),
      egress: chatNodeEgressRules(np, cluster.spec.push),
    },
  };
}
