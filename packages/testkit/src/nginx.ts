import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ManagedProcess, run, tailOf, tcpOpen, tempDir, waitUntil } from "./process.js";
import { systemBinary } from "./tools.js";

export interface NginxService {
  url: string;
  port: number;
  /** Rewrites the upstream list and reloads nginx (no dropped listener). */
  setUpstreams(addresses: string[]): Promise<void>;
  stop(): Promise<void>;
  logTail(): string;
}

function config(dir: string, port: number, upstreams: string[]): string {
  const servers =
    upstreams.length > 0
      ? upstreams.map((a) => `    server ${a};`).join("\n")
      : "    server 127.0.0.1:9 down;";
  return `worker_processes 1;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path ${join(dir, "body")};
  proxy_temp_path ${join(dir, "proxy")};
  fastcgi_temp_path ${join(dir, "fastcgi")};
  uwsgi_temp_path ${join(dir, "uwsgi")};
  scgi_temp_path ${join(dir, "scgi")};
  client_max_body_size 12m;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream chat_nodes {
    # Socket.IO's long-polling needs every request of a session on the same node.
    ip_hash;
${servers}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://chat_nodes;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 3600s;
    }
  }
}
`;
}

/** nginx in front of chat-nodes: WebSocket upgrade, sticky long-polling, upstreams rewritten on change. */
export async function startNginx(options: { port: number; upstreams: string[] }): Promise<NginxService> {
  const binary = systemBinary(["/usr/sbin/nginx"], "nginx");
  const dir = await tempDir("nginx");
  const confPath = join(dir.path, "nginx.conf");
  await writeFile(confPath, config(dir.path, options.port, options.upstreams));
  const proc = new ManagedProcess({
    name: "nginx",
    command: binary,
    args: ["-p", dir.path, "-c", confPath, "-g", "daemon off;"],
    logFile: join(dir.path, "nginx.log"),
  });
  await waitUntil("nginx", proc, () => tcpOpen(options.port), 10_000, 50);
  return {
    url: `http://127.0.0.1:${options.port}`,
    port: options.port,
    logTail: () => `${proc.logTail()}\n--- error.log ---\n${tailOf(join(dir.path, "error.log"), 40)}`,
    setUpstreams: async (addresses) => {
      await writeFile(confPath, config(dir.path, options.port, addresses));
      await run(binary, ["-p", dir.path, "-c", confPath, "-s", "reload"]);
    },
    stop: async () => {
      await proc.stop();
      await dir.remove();
    },
  };
}
