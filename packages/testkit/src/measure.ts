// Measures how long each harness service takes to start and stop: `npx tsx packages/testkit/src/measure.ts`.
import { startControlPlane } from "./controlplane.js";
import { startMongo } from "./mongo.js";
import { startRabbitMQ } from "./rabbitmq.js";
import { startRedis } from "./redis.js";

const services: [string, () => Promise<{ stop(): Promise<void> }>][] = [
  ["redis", startRedis],
  ["rabbitmq", () => startRabbitMQ()],
  ["rabbitmq + management", () => startRabbitMQ({ management: true })],
  ["ferretdb + postgresql", startMongo],
  ["control plane (etcd, apiserver, kcm, scheduler, kwok)", startControlPlane],
];

async function main(): Promise<void> {
  for (const [name, start] of services) {
    let t = Date.now();
    const s = await start();
    const up = Date.now() - t;
    t = Date.now();
    await s.stop();
    console.log(`${name}: start ${up} ms, stop ${Date.now() - t} ms`);
  }
  const t = Date.now();
  const all = await Promise.all(services.map(([, start]) => start()));
  console.log(`all of them in parallel: start ${Date.now() - t} ms`);
  await Promise.all(all.map((s) => s.stop()));
}

void main();
