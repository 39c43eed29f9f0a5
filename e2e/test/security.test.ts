/**
 * Least privilege and isolation on the real node: the operator installed to watch one namespace (its
 * rights a Role there), the chat-node pod admission policy of the bundle, the chat-nodes' NetworkPolicy
 * made by the operator and enforced by kube-router's network policy controller, and hardened pods.
 * Every credential used is the one a pod really has (its mounted ServiceAccount token), every connection
 * goes between pods on the node's bridge or to the backing services on its gateway.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { after, before, describe, test } from "node:test";
import { io } from "socket.io-client";
import { waitFor } from "@vibetalk/testkit";
import { CHAT_NODE_IMAGE, startVibeTalkCluster, type VibeTalkCluster } from "../src/index.js";
import { createGroup, register } from "../src/traffic.js";

const NS = "chat";
const GATEWAY = "10.244.0.1";
const OTHER = "elsewhere";
const TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";
let cluster: VibeTalkCluster;
/** A TCP listener on the gateway that no NetworkPolicy allows: egress to it must fail. */
let bystander: Server;
let bystanderPort = 0;

const portOf = (url: string): number => Number(new URL(url).port);
const kubectl = (args: string[], input?: string) =>
  cluster.cp.kubectl(args, input === undefined ? {} : { input });
const exec = (pod: string, container: string, command: string[], ns = NS) =>
  kubectl(["exec", "-n", ns, pod, "-c", container, "--", ...command]);

/** Runs a script with the image's node in a pod; it prints one line, which is returned. */
const nodeIn = async (pod: string, container: string, script: string): Promise<string> =>
  (await exec(pod, container, ["node", "-e", script])).trim();

/** From inside a pod: a TCP connection to host:port within 3 s, `connected` or the error code. */
const tcpScript = (host: string, port: number) =>
  `const s=require('net').connect(${port},'${host}');s.setTimeout(3000);` +
  `s.on('connect',()=>{console.log('connected');s.destroy()});` +
  `s.on('timeout',()=>{console.log('TIMEOUT');s.destroy()});s.on('error',e=>console.log(e.code))`;

/** From inside a pod: GET of a URL within 3 s, `<status>` or the error code. */
const getScript = (url: string) =>
  `fetch('${url}',{signal:AbortSignal.timeout(3000)}).then(r=>console.log(r.status),` +
  `e=>console.log(e.cause?.code??e.name))`;

/**
 * From inside a chat-node pod, with its own mounted token, through the `kubernetes` Service: a merge
 * patch of a pod; prints the HTTP status and the API server's message.
 */
const patchScript = (pod: string, patch: unknown) =>
  `const fs=require('fs');const https=require('https');` +
  `const t=fs.readFileSync('${TOKEN}','utf8');` +
  `const ca=fs.readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/ca.crt');` +
  `const r=https.request({host:process.env.KUBERNETES_SERVICE_HOST,port:process.env.KUBERNETES_SERVICE_PORT,` +
  `path:'/api/v1/namespaces/${NS}/pods/${pod}',method:'PATCH',ca,` +
  `headers:{authorization:'Bearer '+t,'content-type':'application/merge-patch+json'}},` +
  `res=>{let b='';res.on('data',d=>b+=d);res.on('end',()=>{let m='';try{m=JSON.parse(b).message??''}catch{}` +
  `console.log(res.statusCode+' '+m)})});r.on('error',e=>console.log('ERR '+e.code));` +
  `r.end(${JSON.stringify(JSON.stringify(patch))})`;

interface PodJson {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    securityContext?: Record<string, unknown>;
    containers: { name: string; securityContext?: Record<string, unknown>; resources?: unknown }[];
  };
  status: { podIP: string };
}
const podJson = async (name: string, ns = NS): Promise<PodJson> =>
  JSON.parse(await kubectl(["get", "pod", "-n", ns, name, "-o", "json"])) as PodJson;

/** A pod from the chat-node image that only idles (or serves), labelled as given. */
async function startProbePod(name: string, labels: Record<string, string>): Promise<PodJson> {
  const serve = "require('http').createServer((q,r)=>r.end('probe')).listen(8080)";
  await kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: NS, labels },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [{ name: "probe", image: CHAT_NODE_IMAGE, command: ["node", "-e", serve] }],
      },
    }),
  );
  await kubectl(["wait", "-n", NS, "--for=condition=Ready", `pod/${name}`, "--timeout=90s"]);
  return podJson(name);
}

describe("least privilege and isolation on the real node", { timeout: 900_000 }, () => {
  let chatNodes: PodJson[] = [];
  let probe: PodJson;
  let metrics: PodJson;

  before(async () => {
    const started = Date.now();
    cluster = await startVibeTalkCluster({
      namespace: NS,
      replicas: 2,
      partitions: 8,
      networkPolicy: true,
      watchOwnNamespace: true,
      management: false,
      log: (m) => console.log(`[cluster] ${m}`),
      // The backing services and the API server listen on the gateway, on ports of their own:
      // egress goes to exactly those (the API server after the `kubernetes` Service's translation).
      spec: (k) => {
        const gateway = [{ ipBlock: { cidr: `${GATEWAY}/32` } }];
        const to = (url: string) => ({ ports: [portOf(url)], to: gateway });
        return {
          networkPolicy: {
            enabled: true,
            metricsFrom: [{ podSelector: { matchLabels: { "vibetalk.io/role": "metrics" } } }],
            egress: {
              rabbitmq: to(k.rabbit.url),
              redis: to(k.redis.url),
              mongodb: to(k.mongo.url),
              apiServer: to(k.cp.server),
            },
          },
        };
      },
    });
    console.log(`[cluster] Ready with the NetworkPolicy in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const names = (await cluster.readyChatNodes()).map((n) => n.name);
    chatNodes = await Promise.all(names.map((n) => podJson(n)));
    [probe, metrics] = await Promise.all([
      startProbePod("probe", { app: "probe" }),
      startProbePod("metrics", { "vibetalk.io/role": "metrics" }),
    ]);
    assert.equal(cluster.net.gateway, GATEWAY);
    // Clients that reset the connection are fine: no error handler would make that an uncaught error.
    bystander = createServer((sock) => sock.on("error", () => undefined).end("bystander\n"));
    await new Promise<void>((r) => bystander.listen(0, GATEWAY, r));
    const address = bystander.address();
    bystanderPort = typeof address === "object" && address ? address.port : 0;
    await kubectl(["create", "namespace", OTHER]);
    await kubectl(["-n", OTHER, "create", "secret", "generic", "private", "--from-literal=k=v"]);
  });
  after(async () => {
    await new Promise<void>((r) => (bystander ? bystander.close(() => r()) : r()));
    await cluster?.stop();
  });

  test("chat-node pods run hardened: uid 10001, read-only root, no capabilities, no new privileges, seccomp", async () => {
    const [a] = chatNodes;
    assert.ok(a);
    assert.deepEqual(a.spec.securityContext, {
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    const c = a.spec.containers[0];
    assert.deepEqual(c?.securityContext, {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    assert.ok(c?.resources, "requests and limits");
    const seen = await nodeIn(
      a.metadata.name,
      "chat-node",
      "const s=require('fs').readFileSync('/proc/self/status','utf8');" +
        "const f=k=>s.match(new RegExp('^'+k+':\\\\s*(\\\\S+)','m'))[1];" +
        "let w;try{require('fs').writeFileSync('/app/x','');w='writable'}catch(e){w=e.code}" +
        "console.log(JSON.stringify({uid:process.getuid(),CapEff:f('CapEff'),NoNewPrivs:f('NoNewPrivs'),Seccomp:f('Seccomp'),root:w}))",
    );
    assert.deepEqual(JSON.parse(seen), {
      uid: 10001,
      CapEff: "0000000000000000",
      NoNewPrivs: "1",
      Seccomp: "2",
      root: "EROFS",
    });
  });

  test("the client Service has no operations port; the headless Service has it", async () => {
    const ports = async (svc: string) =>
      (await kubectl(["get", "service", "-n", NS, svc, "-o", "jsonpath={.spec.ports[*].name}"])).trim();
    assert.equal(await ports("chat"), "http");
    assert.equal(await ports("chat-headless"), "http ops");
  });

  test("a chat-node's own token: its connections annotation only, nothing of another pod", async () => {
    const [a, b] = chatNodes;
    assert.ok(a && b);
    const as = (target: string, patch: unknown) =>
      nodeIn(a.metadata.name, "chat-node", patchScript(target, patch));
    const annotations = (v: Record<string, string | null>) => ({ metadata: { annotations: v } });

    const own = await as(a.metadata.name, annotations({ "vibetalk.io/connections": "7" }));
    assert.match(own, /^200\b/, own);
    const denied: [string, string, unknown, RegExp][] = [
      [
        "the other chat-node",
        b.metadata.name,
        annotations({ "vibetalk.io/connections": "0" }),
        /only its own pod/,
      ],
      [
        "a pod of another workload",
        probe.metadata.name,
        annotations({ "vibetalk.io/connections": "0" }),
        /only its own pod/,
      ],
      [
        "its own labels",
        a.metadata.name,
        { metadata: { labels: { "app.kubernetes.io/instance": "x" } } },
        /nothing of its pod/,
      ],
      [
        "another annotation of its own",
        a.metadata.name,
        annotations({ "vibetalk.io/spec-hash": "0" }),
        /no annotation/,
      ],
      ["its own spec", a.metadata.name, { spec: { activeDeadlineSeconds: 1 } }, /nothing of its pod/],
    ];
    for (const [what, target, patch, why] of denied) {
      const out = await as(target, patch);
      assert.match(out, /^403 /, `${what}: ${out}`);
      assert.match(out, /ValidatingAdmissionPolicy 'vibetalk-chat-node-pods'/, what);
      assert.match(out, why, what);
    }
    const other = await podJson(b.metadata.name);
    assert.equal(other.metadata.labels?.["app.kubernetes.io/instance"], "chat");
  });

  test("the operator's own token reads secrets in its watched namespace only", async () => {
    const pod = (
      await kubectl([
        "get",
        "pods",
        "-n",
        "vibetalk-system",
        "-l",
        "app.kubernetes.io/component=operator",
        "-o",
        "jsonpath={.items[0].metadata.name}",
      ])
    ).trim();
    const token = (await exec(pod, "operator", ["cat", TOKEN], "vibetalk-system")).trim();
    const attempt = (args: string[]) =>
      kubectl([`--token=${token}`, ...args]).then(
        (out) => ({ ok: true, out }),
        (err: unknown) => ({ ok: false, out: String(err) }),
      );
    const elsewhere = await attempt(["-n", OTHER, "get", "secret", "private"]);
    assert.equal(elsewhere.ok, false);
    assert.match(
      elsewhere.out,
      /secrets "private" is forbidden: User "system:serviceaccount:vibetalk-system:vibetalk-operator"/,
    );
    const cluster = await attempt(["get", "secrets", "--all-namespaces"]);
    assert.equal(cluster.ok, false);
    const watched = await attempt(["-n", NS, "get", "secret", "chat-backends", "-o", "name"]);
    assert.equal(watched.ok, true, watched.out);
  });

  test("NetworkPolicy: any pod reaches the client port, only the metrics pod the operations port", async () => {
    const [a] = chatNodes;
    assert.ok(a);
    const ip = a.status.podIP;
    assert.equal(await nodeIn("probe", "probe", getScript(`http://${ip}:8080/`)), "200");
    const blocked = await nodeIn("probe", "probe", getScript(`http://${ip}:9090/metrics`));
    assert.notEqual(blocked, "200", "an unlabelled pod must not scrape");
    console.log(`[policy] unlabelled pod → ops port: ${blocked}`);
    assert.equal(await nodeIn("metrics", "probe", getScript(`http://${ip}:9090/metrics`)), "200");
    // Without the policy the same pod reaches any port of any pod: the probe pods have none.
    assert.equal(await nodeIn("probe", "probe", getScript(`http://${metrics.status.podIP}:8080/`)), "200");
  });

  test("NetworkPolicy: a chat-node reaches its services but no other pod and no other port", async () => {
    const [a] = chatNodes;
    assert.ok(a);
    const from = (host: string, port: number) => nodeIn(a.metadata.name, "chat-node", tcpScript(host, port));
    const toPod = await from(probe.status.podIP, 8080);
    const toHost = await from(GATEWAY, bystanderPort);
    console.log(`[policy] chat-node → probe pod :8080: ${toPod}; → gateway :${bystanderPort}: ${toHost}`);
    assert.notEqual(toPod, "connected");
    assert.notEqual(toHost, "connected");
    assert.equal(await from(GATEWAY, portOf(cluster.redis.url)), "connected", "Redis is allowed");
    // The probe pod has no policy: the bystander port itself is reachable.
    assert.equal(await nodeIn("probe", "probe", tcpScript(GATEWAY, bystanderPort)), "connected");
  });

  test("chat works through the policies, and a chat-node's own reporter still writes its count", async () => {
    const [a, b] = await cluster.readyChatNodes();
    assert.ok(a && b);
    const alice = await register(a.url, "alice");
    const bob = await register(b.url, "bob");
    const channelId = await createGroup(a.url, alice, "policies", [bob]);
    const sa = io(a.url, { auth: { token: alice.token }, transports: ["websocket"], reconnection: false });
    const sb = io(b.url, { auth: { token: bob.token }, transports: ["websocket"], reconnection: false });
    try {
      await Promise.all([sa, sb].map((s) => new Promise<void>((r) => s.once("connect", () => r()))));
      const got = new Promise<{ body: string }>((r) => sb.once("message", r));
      const ack = (await sa.timeout(10_000).emitWithAck("message:send", {
        channelId,
        clientMsgId: "m1",
        body: "through the policy",
      })) as { ok: boolean };
      assert.equal(ack.ok, true);
      assert.equal((await got).body, "through the policy");
      // Pod b was never patched by this test: its annotation comes from chat-node's reporter, with the
      // pod's own token, through the admission policy and the NetworkPolicy.
      await waitFor(
        `${b.name}'s vibetalk.io/connections annotation = 1`,
        async () => (await podJson(b.name)).metadata.annotations?.["vibetalk.io/connections"] === "1",
        30_000,
        500,
      );
    } finally {
      sa.disconnect();
      sb.disconnect();
    }
  });
});
