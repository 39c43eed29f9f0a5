import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  DEFAULT_LIMITS,
  ERROR_CODES,
  HTTP_STATUS,
  MessageSchema,
  MessageSendReplySchema,
  ProtocolError,
  protocolSchemas,
  schemas,
  utf8Bytes,
} from "../../src/index.js";
import { withReference } from "../../src/reference.js";

const chan = "0123456789abcdef01234567";
const user = "aaaaaaaaaaaaaaaaaaaaaaaa";

test("message:send accepts a valid payload and strips unknown keys", () => {
  const r = schemas.MessageSend.parse({ channelId: chan, clientMsgId: "c-1", body: "hi", extra: 1 });
  assert.deepEqual(r, { channelId: chan, clientMsgId: "c-1", body: "hi" });
});

test("message:send rejects wrong types, blank bodies, too many files and oversize bodies", () => {
  const bad: unknown[] = [
    null,
    "x",
    { channelId: 5, clientMsgId: "c", body: "hi" },
    { channelId: chan, clientMsgId: "", body: "hi" },
    { channelId: chan, clientMsgId: "has space", body: "hi" },
    { channelId: chan, clientMsgId: "c", body: "   " },
    { channelId: chan, clientMsgId: "c", body: "x".repeat(4097) },
    { channelId: chan, clientMsgId: "c", body: "é".repeat(2049) },
    { channelId: chan, clientMsgId: "c", body: "hi", fileIds: Array(11).fill(user) },
    { channelId: "../etc", clientMsgId: "c", body: "hi" },
  ];
  for (const b of bad)
    assert.equal(schemas.MessageSend.safeParse(b).success, false, JSON.stringify(b)?.slice(0, 80));
  assert.ok(
    schemas.MessageSend.safeParse({ channelId: chan, clientMsgId: "c", body: "", fileIds: [user] }).success,
  );
  assert.ok(
    schemas.MessageSend.safeParse({ channelId: chan, clientMsgId: "c", body: "é".repeat(2048) }).success,
  );
});

test("text the store cannot hold is INVALID_ARGUMENT: NUL, other C0 controls, unpaired surrogates", () => {
  const send = (body: string) =>
    schemas.MessageSend.safeParse({ channelId: chan, clientMsgId: "c", body }).success;
  for (const bad of [
    "a\u0000b",
    "\u0000",
    "bell\u0007",
    "esc\u001b[0m",
    "\u000b",
    "\u000c",
    "\u001f",
    "x\ud800",
    "\udc00y",
  ])
    assert.equal(send(bad), false, JSON.stringify(bad));
  for (const good of ["tab\tline\ncr\r", "del\u007f", "c1\u0085", "😀", "é", "a\u2028b"])
    assert.equal(send(good), true, JSON.stringify(good));
  const names: Array<[string, unknown]> = [
    [
      "display name",
      schemas.RegisterBody.safeParse({ username: "abc", password: "password1", displayName: "a\u0000" }),
    ],
    ["group name", schemas.CreateChannelBody.safeParse({ type: "group", name: "g\u0001" })],
    ["rename", schemas.RenameChannelBody.safeParse({ name: "g\u0000" })],
    ["file name", schemas.UploadFile.safeParse({ filename: "a\u0000.png" })],
    ["login", schemas.LoginBody.safeParse({ username: "a\u0000", password: "x" })],
    ["user search", schemas.UsersQuery.safeParse({ query: "a\u0000" })],
  ];
  for (const [what, r] of names) {
    const issue = (r as { success: boolean; error?: { issues: Array<{ message: string }> } }).error
      ?.issues[0];
    assert.match(issue?.message ?? "", /control characters/, what);
  }
  assert.ok(schemas.UploadFile.safeParse({ filename: "report\t2024.pdf" }).success);
});

test("limits are configurable", () => {
  const s = protocolSchemas({ ...DEFAULT_LIMITS, maxBodyBytes: 10 });
  assert.equal(
    s.MessageSend.safeParse({ channelId: chan, clientMsgId: "c", body: "x".repeat(11) }).success,
    false,
  );
  assert.equal(
    s.MessageSend.safeParse({ channelId: chan, clientMsgId: "c", body: "x".repeat(10) }).success,
    true,
  );
});

test("usernames are lower-cased then checked", () => {
  assert.equal(
    schemas.RegisterBody.parse({ username: "Alice_1", password: "password1" }).username,
    "alice_1",
  );
  for (const u of ["ab", "a".repeat(33), "bad name", "ünï"]) {
    assert.equal(schemas.RegisterBody.safeParse({ username: u, password: "password1" }).success, false, u);
  }
});

test("query strings are coerced and bounded", () => {
  assert.deepEqual(schemas.MessagesQuery.parse({ afterSeq: "3", limit: "20" }), { afterSeq: 3, limit: 20 });
  assert.equal(schemas.MessagesQuery.safeParse({ limit: "101" }).success, false);
  assert.equal(schemas.MessagesQuery.safeParse({ afterSeq: "-1" }).success, false);
  assert.equal(schemas.MessagesQuery.safeParse({ afterSeq: "5", beforeSeq: "5" }).success, false);
  assert.equal(schemas.MessagesQuery.safeParse({ afterSeq: "abc" }).success, false);
});

test("create channel is a discriminated union", () => {
  assert.ok(schemas.CreateChannelBody.safeParse({ type: "direct", userId: user }).success);
  assert.deepEqual(schemas.CreateChannelBody.parse({ type: "group", name: " g " }), {
    type: "group",
    name: "g",
    memberIds: [],
  });
  assert.equal(schemas.CreateChannelBody.safeParse({ type: "other" }).success, false);
  assert.equal(
    schemas.CreateChannelBody.safeParse({ type: "group", name: "g", memberIds: Array(1000).fill(user) })
      .success,
    false,
  );
});

test("replies and events", () => {
  assert.ok(MessageSendReplySchema.safeParse({ ok: true, clientMsgId: "c" }).success);
  assert.ok(
    MessageSendReplySchema.safeParse({ ok: false, error: { code: "RATE_LIMITED", message: "slow" } }).success,
  );
  assert.equal(
    MessageSendReplySchema.safeParse({ ok: false, error: { code: "NOPE", message: "x" } }).success,
    false,
  );
  const m = {
    channelId: chan,
    seq: 1,
    id: `${chan}:000000000001`,
    senderId: user,
    clientMsgId: "c",
    body: "b",
    fileIds: [],
    createdAt: new Date().toISOString(),
  };
  assert.ok(MessageSchema.safeParse(m).success);
});

test("every error code has a status and ProtocolError renders", () => {
  for (const c of ERROR_CODES) assert.ok(HTTP_STATUS[c] >= 400);
  assert.deepEqual(
    [HTTP_STATUS.BLOCKED, HTTP_STATUS.EDIT_WINDOW_CLOSED, HTTP_STATUS.MESSAGE_DELETED],
    [403, 403, 410],
  );
  assert.deepEqual(new ProtocolError("NOT_FOUND", "no").toInfo(), { code: "NOT_FOUND", message: "no" });
  assert.equal(utf8Bytes("é"), 2);
});

test("docs/protocol.md carries the current schema reference", () => {
  const path = fileURLToPath(new URL("../../../../docs/protocol.md", import.meta.url));
  const doc = readFileSync(path, "utf8");
  assert.equal(withReference(doc), doc, "run: npm run docs -w @vibetalk/protocol");
});
