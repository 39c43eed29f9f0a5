// The logger's shape and redaction, on an in-memory destination.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger, traceIdOf } from "../../src/logger.js";

function capture(): { lines: () => Array<Record<string, unknown>>; stream: Writable } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      text
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test("level names, ISO time, node, pod and traceId on every line; a child's traceId is not repeated", () => {
  const c = capture();
  const log = createLogger("debug", "n1", "pod-0", c.stream);
  log.info("plain");
  log.child({ traceId: "ab".repeat(16), reqId: "r1" }).debug({ event: "x" }, "in a request");
  const [a, b] = c.lines();
  assert.deepEqual(
    { level: a?.["level"], node: a?.["node"], pod: a?.["pod"], traceId: a?.["traceId"] },
    { level: "info", node: "n1", pod: "pod-0", traceId: null },
  );
  assert.ok(!Number.isNaN(Date.parse(String(a?.["time"]))));
  assert.equal(b?.["level"], "debug");
  assert.equal(b?.["traceId"], "ab".repeat(16));
  assert.equal(b?.["reqId"], "r1");
});

test("credentials are redacted wherever a logged object carries them", () => {
  const c = capture();
  const log = createLogger("info", "n1", undefined, c.stream);
  log.info(
    {
      password: "p1",
      token: "t1",
      body: { username: "ann", password: "p2", newPassword: "p3", currentPassword: "p4" },
      req: { headers: { authorization: "Bearer t2", cookie: "sid=c1", host: "h" } },
      headers: { "set-cookie": "sid=c2" },
      handshake: { auth: { token: "t3" }, headers: { cookie: "c3" } },
      auth: { token: "t4" },
    },
    "everything secret",
  );
  const text = JSON.stringify(c.lines());
  for (const s of ["p1", "p2", "p3", "p4", "t1", "t2", "t3", "t4", "c1", "c2", "c3"])
    assert.equal(text.includes(`"${s}`) || text.includes(`=${s}`) || text.includes(` ${s}`), false, s);
  assert.match(text, /\[redacted\]/);
  assert.match(text, /"username":"ann"/, "other fields stay");
  assert.match(text, /"host":"h"/);
});

test("traceparent parsing", () => {
  assert.equal(traceIdOf(`00-${"a1".repeat(16)}-${"b2".repeat(8)}-01`), "a1".repeat(16));
  assert.equal(traceIdOf(`00-${"0".repeat(32)}-${"b2".repeat(8)}-01`), undefined);
  assert.equal(traceIdOf("garbage"), undefined);
  assert.equal(traceIdOf(undefined), undefined);
});
