import { test } from "node:test";
import assert from "node:assert/strict";
import type { ProtocolError } from "@vibetalk/protocol";
import { schemas } from "@vibetalk/protocol";
import { CONFIG_ENV_VARS, ConfigError, loadConfig } from "../../src/config.js";
import { parseOrThrow } from "../../src/domain/validation.js";

const base = {
  REDIS_URL: "redis://127.0.0.1:6379",
  RABBITMQ_URL: "amqp://guest:guest@127.0.0.1:5672",
  MONGODB_URL: "mongodb://127.0.0.1:27017/vibetalk",
  JWT_SECRET: "0123456789abcdef0123456789abcdef",
};

test("defaults are documented values", () => {
  const c = loadConfig({ ...base, POD_NAME: "chat-0" });
  assert.equal(c.port, 8080);
  assert.equal(c.partitions, 64);
  assert.equal(c.userExchanges, 16);
  assert.equal(c.ownedPartitions.size, 64);
  assert.equal(c.nodeId, "chat-0");
  assert.equal(c.limits.maxBodyBytes, 4096);
  assert.equal(c.limits.sendRatePerSecond, 20);
  assert.equal(c.limits.sendBurst, 40);
  assert.equal(c.otelEndpoint, undefined);
  assert.ok(c.fileTypes.includes("image/png"));
});

test("values are parsed from strings; NODE_ID wins over POD_NAME; empty means unset", () => {
  const c = loadConfig({
    ...base,
    NODE_ID: "n1",
    POD_NAME: "p",
    PARTITIONS: "8",
    OWNED_PARTITIONS: "0-3",
    BATCH_SIZE: "50",
    FILE_TYPES: "image/png, text/plain",
    PORT: "",
  });
  assert.equal(c.nodeId, "n1");
  assert.equal(c.partitions, 8);
  assert.deepEqual([...c.ownedPartitions], [0, 1, 2, 3]);
  assert.equal(c.batchSize, 50);
  assert.deepEqual(c.fileTypes, ["image/png", "text/plain"]);
  assert.equal(c.port, 8080);
});

test("a bad value names its variable", () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PARTITIONS: "zero" }, /PARTITIONS/],
    [{ REDIS_URL: "http://x" }, /REDIS_URL/],
    [{ JWT_SECRET: "short" }, /JWT_SECRET/],
    [{ PARTITIONS: "4", OWNED_PARTITIONS: "0-9" }, /OWNED_PARTITIONS/],
    [{ NODE_ID: "bad id!" }, /NODE_ID/],
    [{ PRESENCE_TTL_SECONDS: "5", PRESENCE_HEARTBEAT_SECONDS: "5" }, /PRESENCE_TTL_SECONDS/],
  ];
  for (const [env, re] of cases) {
    assert.throws(
      () => loadConfig({ ...base, ...env }),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
      JSON.stringify(env),
    );
  }
  assert.throws(
    () => loadConfig({}),
    (e: unknown) => e instanceof ConfigError && /MONGODB_URL/.test(e.message),
  );
  assert.ok(CONFIG_ENV_VARS.includes("OWNED_PARTITIONS"));
});

test("validation maps schema failures to protocol errors", () => {
  const err = (input: unknown) => {
    try {
      parseOrThrow(schemas.MessageSend, input);
    } catch (e) {
      return e as ProtocolError;
    }
    throw new Error("expected a failure");
  };
  assert.equal(err({ channelId: 1 }).code, "INVALID_ARGUMENT");
  assert.equal(err({ channelId: "c", clientMsgId: "x", body: "y".repeat(5000) }).code, "PAYLOAD_TOO_LARGE");
  assert.match(err(undefined).message, /payload/);
});

test("transports, ping and the admin view (off unless both credentials are set)", () => {
  const d = loadConfig(base);
  assert.deepEqual(d.transports, ["polling", "websocket"]);
  assert.equal(d.pingIntervalMs, 25_000);
  assert.equal(d.pingTimeoutMs, 20_000);
  assert.equal(d.adminUi, undefined);
  assert.equal(d.pod, undefined);
  assert.deepEqual(loadConfig({ ...base, SOCKET_TRANSPORTS: "websocket" }).transports, ["websocket"]);
  assert.throws(() => loadConfig({ ...base, SOCKET_TRANSPORTS: "flash" }), ConfigError);
  const hash = `$2b$10$${"a".repeat(53)}`;
  const on = loadConfig({ ...base, ADMIN_UI_USERNAME: "admin", ADMIN_UI_PASSWORD_HASH: hash });
  assert.deepEqual(on.adminUi, {
    username: "admin",
    passwordHash: hash,
    readonly: true,
    origins: ["https://admin.socket.io"],
  });
  assert.throws(() => loadConfig({ ...base, ADMIN_UI_USERNAME: "admin" }), /both|together/);
  assert.throws(
    () => loadConfig({ ...base, ADMIN_UI_USERNAME: "admin", ADMIN_UI_PASSWORD_HASH: "plain" }),
    /bcrypt/,
  );
  for (const v of ["SOCKET_TRANSPORTS", "ADMIN_UI_USERNAME", "ADMIN_UI_PASSWORD_HASH", "ADMIN_UI_READONLY"])
    assert.ok(CONFIG_ENV_VARS.includes(v), v);
});
