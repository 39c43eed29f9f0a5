/**
 * deletionPolicy against a real control plane and a real RabbitMQ: with Delete the operator holds a
 * finalizer and removes the cluster's queues and exchanges before the ChatCluster goes; with Retain
 * (the default) there is no finalizer and the topology (and its messages) stays.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  RABBITMQ_VERSIONS,
  startControlPlane,
  startRabbitMQ,
  type ControlPlane,
  type RabbitMQService,
} from "@vibetalk/testkit";
import { connect } from "amqplib";
import { clusterTopology } from "../../src/controller/topology.js";
import { startOperator, type OperatorProcess } from "../support/operator-process.js";
import {
  applyYaml,
  chatClusterYaml,
  getOrUndefined,
  installCrd,
  operatorKubeconfig,
  waitFor,
  type ChatClusterJson,
} from "../support/k8s.js";

let cp: ControlPlane;
let rabbit: RabbitMQService;
let op: OperatorProcess;
const NS = "default";
const spec = { partitions: 4, userExchanges: 2 };

async function declareTopology(): Promise<void> {
  const conn = await connect(rabbit.url);
  const ch = await conn.createChannel();
  const t = clusterTopology(spec);
  for (const x of t.exchanges) await ch.assertExchange(x, "direct", { durable: true });
  for (const q of t.queues) {
    await ch.assertQueue(q, { durable: true, arguments: { "x-queue-type": "quorum" } });
    ch.sendToQueue(q, Buffer.from("kept?"), { persistent: true });
  }
  await ch.close();
  await conn.close();
}

/** Names of the topology that still exist (passive checks, one channel each). */
async function existing(): Promise<string[]> {
  const conn = await connect(rabbit.url);
  const found: string[] = [];
  const t = clusterTopology(spec);
  const probe = async (
    name: string,
    check: (ch: Awaited<ReturnType<typeof conn.createChannel>>) => Promise<unknown>,
  ) => {
    const ch = await conn.createChannel();
    ch.on("error", () => undefined);
    try {
      await check(ch);
      found.push(name);
      await ch.close();
    } catch {
      // 404: the channel is closed by the broker
    }
  };
  for (const q of t.queues) await probe(q, (ch) => ch.checkQueue(q));
  for (const x of t.exchanges) await probe(x, (ch) => ch.checkExchange(x));
  await conn.close();
  return found;
}

// The topology removal is broker semantics: run on the RabbitMQ users get (4.x) and on 3.10.
for (const version of RABBITMQ_VERSIONS) {
  describe(
    `deletionPolicy and the RabbitMQ topology finalizer, RabbitMQ ${version}`,
    { timeout: 300_000 },
    () => {
      before(async () => {
        [cp, rabbit] = await Promise.all([startControlPlane({ nodes: 1 }), startRabbitMQ({ version })]);
        await installCrd(cp);
        const kubeconfig = await operatorKubeconfig(cp);
        await cp.kubectl([
          "-n",
          NS,
          "create",
          "secret",
          "generic",
          "rabbitmq",
          `--from-literal=url=${rabbit.url}`,
        ]);
        op = await startOperator({
          kubeconfigPath: kubeconfig,
          identity: "operator-0",
          env: { EXTERNAL_METRICS_ENABLED: "false" },
        });
      });
      after(async () => {
        await op?.stop();
        await Promise.allSettled([cp?.stop(), rabbit?.stop()]);
      });

      test("Retain: no finalizer; deleting the ChatCluster keeps queues and exchanges", async () => {
        await declareTopology();
        await applyYaml(
          cp,
          chatClusterYaml("kept", NS, ["partitions: 4", "userExchanges: 2", "replicas: 1"]),
        );
        await waitFor(
          "status written",
          async () =>
            (await getOrUndefined<ChatClusterJson>(cp, ["-n", NS, "get", "cc", "kept"]))?.status
              ?.observedGeneration === 1,
        );
        const cc = await getOrUndefined<ChatClusterJson>(cp, ["-n", NS, "get", "cc", "kept"]);
        assert.deepEqual(cc?.metadata.finalizers ?? [], []);
        await cp.kubectl(["-n", NS, "delete", "cc", "kept", "--wait=true", "--timeout=60s"]);
        const t = clusterTopology(spec);
        assert.equal((await existing()).length, t.queues.length + t.exchanges.length);
      });

      test("Delete: the finalizer removes the topology, then the ChatCluster goes", async () => {
        await applyYaml(
          cp,
          chatClusterYaml("doomed", NS, [
            "partitions: 4",
            "userExchanges: 2",
            "replicas: 1",
            "deletionPolicy: Delete",
          ]),
        );
        await waitFor("the finalizer", async () =>
          (
            await getOrUndefined<ChatClusterJson>(cp, ["-n", NS, "get", "cc", "doomed"])
          )?.metadata.finalizers?.includes("vibetalk.io/rabbitmq-topology"),
        );
        await cp.kubectl(["-n", NS, "delete", "cc", "doomed", "--wait=true", "--timeout=60s"]);
        assert.equal(await getOrUndefined(cp, ["-n", NS, "get", "cc", "doomed"]), undefined);
        assert.deepEqual(await existing(), []);
      });

      test("switching Delete back to Retain removes the finalizer", async () => {
        await applyYaml(
          cp,
          chatClusterYaml("switch", NS, [
            "partitions: 4",
            "userExchanges: 2",
            "replicas: 1",
            "deletionPolicy: Delete",
          ]),
        );
        await waitFor(
          "the finalizer",
          async () =>
            (await getOrUndefined<ChatClusterJson>(cp, ["-n", NS, "get", "cc", "switch"]))?.metadata
              .finalizers?.length === 1,
        );
        await cp.kubectl([
          "-n",
          NS,
          "patch",
          "cc",
          "switch",
          "--type=merge",
          "-p",
          '{"spec":{"deletionPolicy":"Retain"}}',
        ]);
        await waitFor(
          "no finalizer",
          async () =>
            (
              (await getOrUndefined<ChatClusterJson>(cp, ["-n", NS, "get", "cc", "switch"]))?.metadata
                .finalizers ?? []
            ).length === 0,
        );
      });
    },
  );
}
