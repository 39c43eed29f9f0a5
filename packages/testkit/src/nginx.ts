import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ManagedProcess, run, tailOf, tcpOpen, tempDir, waitUntil } from "./process.js";
import { systemBinary } from "./tools.js";

export interface NginxService {
  url: string;
  port: number;
  /** Rewrites the upstream list and reloads nginx (no dropped listener); `draining` see NginxOptions. */
  setUpstreams(addresses: string[], draining?: string[]): Promise<void>;
  stop(): Promise<void>;
  logTail(): string;
  /** The access log: one line per request, `status method uri upstream "args"`. */
  accessLog(): Promise<string[]>;
}

/**
 * How requests of one Socket.IO session stay on one chat-node (HTTP long polling needs it: another
 * node answers 400 "Session ID unknown"):
 * - `cookie` (default): a client's first request goes round-robin; nginx answers with a `vt_upstream`
 *   cookie naming the chat-node that served it and sends the client's later requests there (new
 *   sessions to ready chat-nodes only, requests inside a session to draining ones too). A new
 *   chat-node moves nobody; a removed one's clients go round-robin again.
 * - `ip_hash`: by the client's /24 (IPv4): every loopback client lands on the same node.
 * - `none`: round-robin, no affinity (only to prove that polling needs it).
 */
export type NginxAffinity = "cookie" | "ip_hash" | "none";

export interface NginxOptions {
  port: number;
  upstreams: string[];
  affinity?: NginxAffinity;
  /**
   * proxy_read_timeout and proxy_send_timeout in seconds (default 75): longer than the chat-node's
   * ping interval (25 s), which bounds how long a polling GET or a WebSocket stays silent.
   */
  timeoutSeconds?: number;
  /**
   * Chat-nodes that are draining (affinity `cookie`): their sessions still reach them, new sessions
   * do not (Kubernetes marks a terminating pod's endpoint `ready: false, serving: true`).
   */
  draining?: string[];
}

/** The cookie that names a session's chat-node (affinity `cookie`). */
export const AFFINITY_COOKIE = "vt_upstream";

/** The upstream, http and server blocks in front of chat-nodes (also shown in docs/nginx.md). */
export function nginxChatConfig(o: Required<Omit<NginxOptions, "port">> & { listen: string }): string {
  const servers =
    o.upstreams.length > 0
      ? o.upstreams.map((a) => `    server ${a};`).join("\n")
      : "    server 127.0.0.1:9 down;";
  const cookie = o.affinity === "cookie";
  const pinned = [...new Set([...o.upstreams, ...o.draining])];
  const entries = (list: string[]) => list.map((a) => `    "${a}" "${a}";`).join("\n");
  const sticky = cookie
    ? `  # The cookie pins a client (every tab of a browser) to the chat-node that served it, as
  # ingress-nginx's persistent cookie affinity does. A new session (no sid) follows it to a ready
  # chat-node only; a request inside a session also to a draining one; anything else round-robin.
  map $cookie_${AFFINITY_COOKIE} $chat_ready {
${entries(o.upstreams)}
    default chat_nodes;
  }
  map $cookie_${AFFINITY_COOKIE} $chat_pinned {
${entries(pinned)}
    default chat_nodes;
  }
  map $arg_sid $chat_upstream {
    "" $chat_ready;
    default $chat_pinned;
  }
  # The last address tried (after a retry $upstream_addr lists them all, comma-separated).
  map $upstream_addr $chat_served_by {
    "~(?:.*,\\s*)?(?<last>[^,\\s]+)$" $last;
    default "";
  }
`
    : "";
  const t = `${o.timeoutSeconds}s`;
  return `  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
${sticky}  upstream chat_nodes {
${o.affinity === "ip_hash" ? "    ip_hash;\n" : ""}${servers}
  }
  server {
    listen ${o.listen};
    location / {
      proxy_pass http://${cookie ? "$chat_upstream" : "chat_nodes"};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      # Longer than the ping interval: a polling GET is answered and a WebSocket carries a ping at
      # least every pingInterval (25 s); nginx's default 60 s would do, the margin is deliberate.
      proxy_read_timeout ${t};
      proxy_send_timeout ${t};
      # A long-polling GET must reach the client as soon as the chat-node answers it.
      proxy_buffering off;
${cookie ? `      add_header Set-Cookie "${AFFINITY_COOKIE}=$chat_served_by; Path=/; HttpOnly; SameSite=Lax" always;\n` : ""}    }
  }
`;
}

function config(dir: string, o: Required<NginxOptions>): string {
  return `worker_processes 1;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 16384; }
http {
  log_format upstreamlog '$status $request_method $uri $upstream_addr "$args"';
  access_log ${join(dir, "access.log")} upstreamlog;
  client_body_temp_path ${join(dir, "body")};
  proxy_temp_path ${join(dir, "proxy")};
  fastcgi_temp_path ${join(dir, "fastcgi")};
  uwsgi_temp_path ${join(dir, "uwsgi")};
  scgi_temp_path ${join(dir, "scgi")};
  client_max_body_size 12m;
${nginxChatConfig({ ...o, listen: `127.0.0.1:${o.port}` })}}
`;
}

/** nginx in front of chat-nodes: WebSocket upgrade, sticky long polling, upstreams rewritten on change. */
export async function startNginx(options: NginxOptions): Promise<NginxService> {
  const settings = (upstreams: string[], draining: string[] = []): Required<NginxOptions> => ({
    port: options.port,
    upstreams,
    draining,
    affinity: options.affinity ?? "cookie",
    timeoutSeconds: options.timeoutSeconds ?? 75,
  });
  const binary = systemBinary(["/usr/sbin/nginx"], "nginx");
  const dir = await tempDir("nginx");
  const confPath = join(dir.path, "nginx.conf");
  await writeFile(confPath, config(dir.path, settings(options.upstreams)));
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
    accessLog: async () =>
      (await readFile(join(dir.path, "access.log"), "utf8").catch(() => "")).split("\n").filter(Boolean),
    setUpstreams: async (addresses, draining) => {
      await writeFile(confPath, config(dir.path, settings(addresses, draining)));
      await run(binary, ["-p", dir.path, "-c", confPath, "-s", "reload"]);
    },
    stop: async () => {
      await proc.stop();
      await dir.remove();
    },
  };
}

/**
 * The raw Engine.IO protocol through a proxy: a long-polling handshake, then `posts` requests of that
 * session; each answer's status and body. Without session affinity some land on another chat-node,
 * which answers 400 "Session ID unknown".
 */
export async function pollingSessionAnswers(url: string, posts = 4): Promise<[number, string][]> {
  const hs = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
  const sid = /"sid":"([^"]+)"/.exec(await hs.text())?.[1];
  if (!sid) throw new Error(`no polling handshake through ${url}: ${hs.status}`);
  const answers: [number, string][] = [];
  for (let i = 0; i < posts; i++) {
    const r = await fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
      method: "POST",
      body: "2probe",
      headers: { "content-type": "text/plain;charset=UTF-8" },
    });
    answers.push([r.status, await r.text()]);
  }
  return answers;
}

/** A Socket.IO client as `followDrains` drives it (socket.io-client's `Socket` fits). */
export interface DrainFollowingClient {
  on(event: string, listener: (e: Error & { data?: { code?: string } }) => void): unknown;
  connect(): unknown;
  disconnect(): unknown;
}

/** What `followDrains` saw per client (by index), read by the test afterwards. */
export interface DrainLog {
  disconnects: number[];
  /** The client got the drain's `reconnect` event (its chat-node is draining). */
  reconnectAsked: boolean[];
  /** Refused handshakes (`index: code`), each retried after 300 ms. */
  refusals: string[];
}

/**
 * Makes clients behind a proxy behave as the web client does in a drain (docs/nginx.md): on the drain's
 * `reconnect` event reconnect at once (the proxy picks a ready chat-node), and retry a refused handshake
 * (a draining node still reached) after 300 ms; neither once `finished()` says the test is over.
 */
export function followDrains(clients: readonly DrainFollowingClient[], finished: () => boolean): DrainLog {
  const log: DrainLog = {
    disconnects: clients.map(() => 0),
    reconnectAsked: clients.map(() => false),
    refusals: [],
  };
  clients.forEach((c, i) => {
    c.on("disconnect", () => log.disconnects[i]!++);
    c.on("reconnect", () => {
      log.reconnectAsked[i] = true;
      c.disconnect();
      if (!finished()) c.connect();
    });
    c.on("connect_error", (e) => {
      log.refusals.push(`${i}: ${e.data?.code ?? e.message}`);
      setTimeout(() => {
        if (!finished()) c.connect();
      }, 300);
    });
  });
  return log;
}
