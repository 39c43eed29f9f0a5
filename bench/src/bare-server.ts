// The baseline of the connection-scale benchmark (connections.ts): a bare Socket.IO server on the same
// Node.js as chat-node (run the same way, `node --import tsx`, open-files limit raised by client-fleet.ts),
// with no authentication, adapter or handlers, on 127.0.0.1 and a free port. It answers `stats` over IPC
// with its memory and the event-loop delay since the last `stats` (perf_hooks at 10 ms resolution, as
// prom-client measures chat-node's vibetalk_process_nodejs_eventloop_lag_p99_seconds).
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Server } from "socket.io";

export type BareCommand = { t: "stats" } | { t: "stop" };
export type BareReport =
  | { t: "listening"; port: number }
  | {
      t: "stats";
      connections: number;
      rss: number;
      heapUsed: number;
      external: number;
      arrayBuffers: number;
      eventLoopP99Ms: number;
      eventLoopMaxMs: number;
    };

const send = (r: BareReport): void => void process.send?.(r);

const http: HttpServer = createServer();
const io = new Server(http);
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();

process.on("message", (c: BareCommand) => {
  if (c.t === "stats") {
    const m = process.memoryUsage();
    send({
      t: "stats",
      connections: io.engine.clientsCount,
      rss: m.rss,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      eventLoopP99Ms: delay.percentile(99) / 1e6,
      eventLoopMaxMs: delay.max / 1e6,
    });
    delay.reset();
  } else if (c.t === "stop") {
    void io.close();
    process.exit(0);
  }
});
process.on("disconnect", () => process.exit(0));
http.listen(0, "127.0.0.1", () => send({ t: "listening", port: (http.address() as AddressInfo).port }));
