/**
 * Removing a cluster's RabbitMQ topology when it is deleted with `deletionPolicy: Delete`.
 *
 * The names are the ones chat-nodes declare (`@vibetalk/protocol/cluster`, docs/architecture.md); AMQP
 * cannot list queues, so they are derived from spec.partitions and spec.userExchanges: the partition
 * queues, the parked queue and the exchanges. Per-node queues (`vibetalk.node.<pod>`) are not listed:
 * they carry `x-expires` and vanish on their own.
 */
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { connect, type Channel, type ChannelModel } from "amqplib";
import type { ChatCluster, ChatClusterSpec } from "../api/v1alpha1.js";
import type { TopologyCleaner } from "./ports.js";
import { durableTopology } from "@vibetalk/protocol/cluster";

export interface ClusterTopology {
  queues: string[];
  exchanges: string[];
}

/** The durable queues and exchanges a cluster declares (pure; the names are chat-node's, shared). */
export function clusterTopology(
  spec: Pick<ChatClusterSpec, "partitions" | "userExchanges">,
): ClusterTopology {
  return durableTopology(spec);
}

export type SecretReader = (namespace: string, name: string, key: string) => Promise<string>;

export function createKubeSecretReader(kc: KubeConfig): SecretReader {
  const core = kc.makeApiClient(CoreV1Api);
  return async (namespace, name, key) => {
    const secret = await core.readNamespacedSecret({ namespace, name });
    const value = secret.data?.[key];
    if (value === undefined) throw new Error(`Secret ${namespace}/${name} has no key ${key}`);
    return Buffer.from(value, "base64").toString("utf8");
  };
}

/** Deletes each name on its own channel attempt: a missing one must not stop the others. */
async function deleteAll(
  model: ChannelModel,
  names: string[],
  op: (ch: Channel, name: string) => Promise<unknown>,
) {
  let ch: Channel | undefined;
  for (const name of names) {
    if (!ch) {
      ch = await model.createChannel();
      ch.on("error", () => undefined);
    }
    try {
      await op(ch, name);
    } catch {
      ch = undefined; // the broker closed the channel; open another for the next name
    }
  }
  await ch?.close().catch(() => undefined);
}

export function createAmqpTopologyCleaner(readSecret: SecretReader): TopologyCleaner {
  return {
    async clean(cluster: ChatCluster) {
      const ref = cluster.spec.rabbitmq.secretRef;
      const url = await readSecret(cluster.metadata.namespace, ref.name, ref.key);
      const topology = clusterTopology(cluster.spec);
      const model = await connect(url);
      model.on("error", () => undefined);
      try {
        await deleteAll(model, topology.queues, (ch, q) => ch.deleteQueue(q));
        await deleteAll(model, topology.exchanges, (ch, x) => ch.deleteExchange(x));
      } finally {
        await model.close().catch(() => undefined);
      }
    },
  };
}
