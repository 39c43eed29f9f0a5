import type { Readiness } from "../http/ops.js";
import type { Backends } from "./backends.js";

/** `p`, or false after `ms` (a ping that hangs is a failed ping). */
function withTimeout(p: Promise<boolean>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      () => {
        clearTimeout(t);
        resolve(false);
      },
    );
  });
}

/**
 * The ops port's readiness. Ready = this node can take messages: RabbitMQ connected, not draining. A
 * store or Redis outage is shared by every node (readiness there would empty the Service and take the
 * partitions away from all of them while sends still work); it shows in `checks` (docs/chat-node.md).
 */
export function readinessOf(b: Backends, draining: () => boolean): () => Promise<Readiness> {
  return async () => {
    const isDraining = draining();
    const [redisOk, storeOk] = await Promise.all([
      withTimeout(b.presence.ping(), 1000),
      withTimeout(b.store.ping(), 1000),
    ]);
    const connected = b.broker.isConnected();
    const checks = {
      broker: connected,
      redis: redisOk,
      store: storeOk,
      draining: isDraining,
      publishing: connected && !b.broker.isBlocked(),
    };
    return { ready: connected && !isDraining, checks };
  };
}
