// The official group on real Redis, RabbitMQ and FerretDB (docs/chat-node.md, "The official group"):
// created once by chat-nodes starting together, joined at registration, existing accounts backfilled in
// resumable batches, who may post and leave, posts by the service token reaching online members live
// and offline ones by sync, pin and counts. Its fan-out (2,000 members, three nodes): large-channels.test.ts.
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, afterEach, before, describe, test } from "node:test";
import {
  OFFICIAL_CHANNEL_ID,
  SERVICE_SENDER_ID,
  type ChannelDetailsReply,
  type ChannelsReply,
  type ErrorBody,
  type Message,
  type PresenceSubscribeReply,
  type SyncReply,
} from "@vibetalk/protocol";
import { MongoStore } from "../../src/adapters/mongo-store.js";
import { closeBackends } from "../../src/node/backends.js";
import type { ChatNode } from "../../src/node.js";
import {
  http,
  serviceLayerOn,
  sleep,
  startNode,
  startServices,
  TestUser,
  waitFor,
  type Services,
} from "../support/harness.js";

const SERVICE_TOKEN = `service-${randomBytes(24).toString("hex")}`;
const ON = {
  OFFICIAL_GROUP: "true",
  OFFICIAL_GROUP_NAME: "VibeTalk News",
  OFFICIAL_SERVICE_TOKEN: SERVICE_TOKEN,
  OFFICIAL_BACKFILL_BATCH: "5",
};

let services: Services;
let A: ChatNode;
let B: ChatNode;
/** Accounts that existed before the official group (created straight in the store). */
let existing: string[] = [];

/** The partitions split between A and B: the official channel's owner is one of them. */
before(async () => {
  services = await startServices();
  const store = await MongoStore.connect(services.mongo.url, 5000);
  try {
    for (let i = 0; i < 7; i++) {
      const u = await store.createUser({
        username: `old${i}_${randomBytes(3).toString("hex")}`,
        displayName: "old",
        passwordHash: "-",
      });
      existing.push(u.id);
    }
  } finally {
    await store.close();
  }
  existing = existing.sort();
  // Two nodes starting at once: each creates the group (one insert wins) and backfills.
  [A, B] = await Promise.all([
    startNode(services, { ...ON, OWNED_PARTITIONS: "0-3" }),
    startNode(services, { ...ON, OWNED_PARTITIONS: "4-7" }),
  ]);
});
/** Users whose sockets each test closes at its end, passed or not. */
const opened: TestUser[] = [];
afterEach(() => {
  for (const u of opened.splice(0)) u.closeAll();
});
/** A new account, its sockets closed after the test. */
async function user(node: ChatNode): Promise<TestUser> {
  const u = await TestUser.register(node);
  opened.push(u);
  return u;
}
after(async () => {
  await Promise.all([A, B].map((n) => n?.stop()));
  await services?.stop();
});

const service = (path: string, body: unknown, token = SERVICE_TOKEN) =>
  http<{ ok: true; clientMsgId: string } & ErrorBody>(
    A.url,
    path.startsWith("PATCH") ? "PATCH" : "POST",
    `/api/v1${path.replace(/^PATCH /, "")}`,
    { token, body },
  );

/** A service (or side) store on its own database of the same FerretDB, with the node's service layer. */
const sideLayer = (db: string) => serviceLayerOn(services, db, ON);

describe("creation and membership", () => {
  test("concurrent creations on the store make one group; a stopped backfill resumes; concurrent ones add each member once", async () => {
    const sides = await Promise.all([sideLayer("official_backfill"), sideLayer("official_backfill")]);
    try {
      const [one, two] = sides.map((x) => x.layer.official) as [
        NonNullable<(typeof sides)[0]["layer"]["official"]>,
        NonNullable<(typeof sides)[0]["layer"]["official"]>,
      ];
      const made = await Promise.all([one, two, one, two, one, two].map((o) => o.ensure()));
      assert.equal(made.filter((r) => r.created).length, 1, "exactly one creation");
      const store = sides[0]?.b.store as MongoStore;
      const ids: string[] = [];
      for (let i = 0; i < 13; i++) {
        ids.push(
          (
            await store.createUser({
              username: `bf${i}_${randomBytes(3).toString("hex")}`,
              displayName: "b",
              passwordHash: "-",
            })
          ).id,
        );
      }
      ids.sort();
      // A node killed after two batches of 5: ten members, the resume point at the tenth id.
      assert.deepEqual(await one.backfill({ maxBatches: 2 }), { covered: 10, done: false });
      assert.equal(await store.backfillMark(OFFICIAL_CHANNEL_ID), ids[9]);
      assert.equal((await store.listMembers(OFFICIAL_CHANNEL_ID)).length, 10);
      // Two nodes resume at once: each member once, the mark at the last id, the count right.
      const [r1, r2] = await Promise.all([one.backfill(), two.backfill()]);
      assert.ok(r1.done && r2.done);
      assert.ok(r1.covered + r2.covered >= 3, "the three left were covered");
      assert.equal(await store.backfillMark(OFFICIAL_CHANNEL_ID), ids[12]);
      const members = (await store.listMembers(OFFICIAL_CHANNEL_ID)).map((m) => m.userId).sort();
      assert.deepEqual(members, ids);
      assert.equal((await store.getChannel(OFFICIAL_CHANNEL_ID))?.memberCount, 13);
    } finally {
      await Promise.all(sides.map((x) => closeBackends(x.b)));
    }
  });

  test("two chat-nodes started together made one group and backfilled the existing accounts", async () => {
    const store = await MongoStore.connect(services.mongo.url, 5000);
    try {
      const ch = await store.getChannel(OFFICIAL_CHANNEL_ID);
      assert.equal(ch?.type, "official");
      assert.equal(ch?.name, "VibeTalk News");
      assert.equal(ch?.posting, "admins");
      await waitFor(
        "the backfill",
        async () => (await store.listMembers(OFFICIAL_CHANNEL_ID)).length >= existing.length,
      );
      const members = (await store.listMembers(OFFICIAL_CHANNEL_ID)).map((m) => m.userId).sort();
      assert.deepEqual(members, existing);
      assert.equal(await store.backfillMark(OFFICIAL_CHANNEL_ID), existing[existing.length - 1]);
    } finally {
      await store.close();
    }
  });

  test("registration joins: the group is in the new account's recent chats with its member count", async () => {
    const ann = await user(B);
    const list = await ann.api<ChannelsReply>(A, "GET", "/channels");
    assert.equal(list.status, 200);
    const official = list.body.channels.find((c) => c.id === OFFICIAL_CHANNEL_ID);
    assert.deepEqual(
      {
        type: official?.type,
        role: official?.role,
        posting: official?.posting,
        pinnedSeq: official?.pinnedSeq,
      },
      { type: "official", role: "member", posting: "admins", pinnedSeq: null },
    );
    assert.ok((official?.memberCount ?? 0) >= existing.length + 1);
  });
});

describe("rules", () => {
  test("CANNOT_LEAVE, POSTING_RESTRICTED, no typing broadcast, no presence contacts, a service post live and by sync", async () => {
    const [ann, ben, cid] = [await user(A), await user(B), await user(A)];
    const left = await ann.api<ErrorBody>(A, "DELETE", `/channels/${OFFICIAL_CHANNEL_ID}/members/${ann.id}`);
    assert.deepEqual([left.status, left.body.error.code], [403, "CANNOT_LEAVE"]);
    const sa = await ann.connect(A);
    const sb = await ben.connect(B);
    const refused = await sa.send(OFFICIAL_CHANNEL_ID, "may I?");
    assert.equal(refused.ok, false);
    assert.equal(!refused.ok && refused.error.code, "POSTING_RESTRICTED");
    assert.deepEqual(await sa.emit("typing", { channelId: OFFICIAL_CHANNEL_ID, typing: true }), { ok: true });
    const presence = await sa.emit<PresenceSubscribeReply>("presence:subscribe", { userIds: [ben.id] });
    assert.equal(
      !presence.ok && presence.error.code,
      "FORBIDDEN",
      "the official group makes nobody a contact",
    );

    // Wrong token, a member's token: refused. The service token: posted, live to ann and ben.
    assert.equal(
      (await service("/official/messages", { clientMsgId: "x", body: "no" }, "not-the-token")).status,
      401,
    );
    const byMember = await service("/official/messages", { clientMsgId: "x", body: "no" }, ann.token);
    assert.deepEqual([byMember.status, byMember.body.error?.code], [403, "FORBIDDEN"]);
    const clientMsgId = randomUUID();
    const posted = await service("/official/messages", { clientMsgId, body: "hello everyone" });
    assert.deepEqual([posted.status, posted.body], [202, { ok: true, clientMsgId }]);
    assert.equal(
      (await service("/official/messages", { clientMsgId, body: "hello everyone" })).status,
      202,
      "a retry",
    );
    const [ma] = await sa.waitMessages(OFFICIAL_CHANNEL_ID, 1);
    const [mb] = await sb.waitMessages(OFFICIAL_CHANNEL_ID, 1);
    assert.deepEqual([ma?.senderId, ma?.body, mb?.seq], [SERVICE_SENDER_ID, "hello everyone", ma?.seq]);
    // Cid was offline: sync brings it. The retry was stored once (I3).
    const sc = await cid.connect(B);
    const sync = await sc.emit<SyncReply>("sync", {
      channels: [{ channelId: OFFICIAL_CHANNEL_ID, afterSeq: 0 }],
    });
    assert.ok(sync.ok);
    const synced = sync.ok ? sync.messages.filter((m: Message) => m.clientMsgId === clientMsgId) : [];
    assert.equal(synced.length, 1);
    await sleep(300);
    assert.equal(sb.of("typing").length, 0, "typing in the official group is not broadcast");
    // A retry is stored once; its fan-out may be repeated (clients drop a seq they hold: docs/protocol.md).
    assert.deepEqual([...new Set(sa.messages(OFFICIAL_CHANNEL_ID).map((x) => x.seq))], [ma?.seq]);
  });

  test("the service makes an admin; the admin pins, opens posting to everyone; details carry the counts", async () => {
    const [adm, mem] = [await user(A), await user(B)];
    const promoted = await service(`PATCH /official/members/${adm.id}`, { role: "admin" });
    assert.deepEqual([promoted.status, promoted.body], [200, { ok: true }]);
    const sa = await adm.connect(A);
    const sm = await mem.connect(B);
    const own = await sa.send(OFFICIAL_CHANNEL_ID, "an admin's own post");
    assert.equal(own.ok, true);
    const [m] = await sm.waitMessages(OFFICIAL_CHANNEL_ID, 1);
    assert.equal(m?.senderId, adm.id);
    const asService = await service(
      "/official/messages",
      { clientMsgId: randomUUID(), body: "as the service" },
      adm.token,
    );
    assert.equal(asService.status, 202);
    await sm.waitMessages(OFFICIAL_CHANNEL_ID, 2);

    const pinNo = await mem.api<ErrorBody>(A, "PUT", `/channels/${OFFICIAL_CHANNEL_ID}/pin`, { seq: m?.seq });
    assert.deepEqual([pinNo.status, pinNo.body.error.code], [403, "FORBIDDEN"]);
    const pinned = await adm.api<{ channel: { pinnedSeq: number | null } }>(
      A,
      "PUT",
      `/channels/${OFFICIAL_CHANNEL_ID}/pin`,
      { seq: m?.seq },
    );
    assert.equal(pinned.body.channel.pinnedSeq, m?.seq);
    const total = (await mem.api<ChannelDetailsReply>(B, "GET", `/channels/${OFFICIAL_CHANNEL_ID}`)).body
      .channel.memberCount;
    const details = await waitFor("two online", async () => {
      const d = await mem.api<ChannelDetailsReply>(B, "GET", `/channels/${OFFICIAL_CHANNEL_ID}`);
      return d.body.onlineCount === 2 ? d.body : undefined;
    });
    assert.equal(details.pinned?.body, "an admin's own post");
    assert.deepEqual(details.service, { userId: SERVICE_SENDER_ID, displayName: "VibeTalk News" });
    assert.deepEqual(
      details.members.map((x) => [x.userId, x.role]),
      [[adm.id, "admin"]],
      "the details list the admins, not every account",
    );
    assert.ok(total >= existing.length + 5);
    const settingsEvent = sm.waitEvent<{ change: string }>("channel", (e) => e.change === "settings");
    const opened = await adm.api<{ channel: { posting: string } }>(
      A,
      "PATCH",
      `/channels/${OFFICIAL_CHANNEL_ID}`,
      { posting: "everyone" },
    );
    assert.equal(opened.body.channel.posting, "everyone");
    await settingsEvent;
    const now = await sm.send(OFFICIAL_CHANNEL_ID, "a member posts");
    assert.equal(now.ok, true);
    const unpinned = await adm.api<{ channel: { pinnedSeq: number | null } }>(
      A,
      "DELETE",
      `/channels/${OFFICIAL_CHANNEL_ID}/pin`,
    );
    assert.equal(unpinned.body.channel.pinnedSeq, null);
    const back = await adm.api<{ channel: { posting: string } }>(
      A,
      "PATCH",
      `/channels/${OFFICIAL_CHANNEL_ID}`,
      { posting: "admins" },
    );
    assert.equal(back.body.channel.posting, "admins");
  });
});

describe("bad input", () => {
  test("each bad request to the new routes gets its code and changes nothing", async () => {
    const [adm, mem] = [await user(A), await user(A)];
    assert.equal((await service(`PATCH /official/members/${adm.id}`, { role: "admin" })).status, 200);
    // A marker posted and seen stored first: everything earlier tests sent is stored by then.
    const marker = randomUUID();
    assert.equal((await service("/official/messages", { clientMsgId: marker, body: "marker" })).status, 202);
    const newest = async () =>
      (await adm.api<{ messages: Message[] }>(A, "GET", `/channels/${OFFICIAL_CHANNEL_ID}/messages?limit=1`))
        .body.messages[0];
    await waitFor("the marker stored", async () => (await newest())?.clientMsgId === marker);
    const before = (await adm.api<ChannelDetailsReply>(A, "GET", `/channels/${OFFICIAL_CHANNEL_ID}`)).body;
    const cases: Array<[string, Promise<{ status: number; body: unknown }>, number, string]> = [
      [
        "pin seq 0",
        adm.api(A, "PUT", `/channels/${OFFICIAL_CHANNEL_ID}/pin`, { seq: 0 }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "pin seq a string",
        adm.api(A, "PUT", `/channels/${OFFICIAL_CHANNEL_ID}/pin`, { seq: "1" }),
        400,
        "INVALID_ARGUMENT",
      ],
      ["pin no body", adm.api(A, "PUT", `/channels/${OFFICIAL_CHANNEL_ID}/pin`), 400, "INVALID_ARGUMENT"],
      [
        "pin a seq not stored",
        adm.api(A, "PUT", `/channels/${OFFICIAL_CHANNEL_ID}/pin`, { seq: 999_999 }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "pin by a member",
        mem.api(A, "PUT", `/channels/${OFFICIAL_CHANNEL_ID}/pin`, { seq: 1 }),
        403,
        "FORBIDDEN",
      ],
      [
        "posting of another value",
        adm.api(A, "PATCH", `/channels/${OFFICIAL_CHANNEL_ID}`, { posting: "owners" }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "posting by a member",
        mem.api(A, "PATCH", `/channels/${OFFICIAL_CHANNEL_ID}`, { posting: "everyone" }),
        403,
        "FORBIDDEN",
      ],
      [
        "add members by hand",
        adm.api(A, "POST", `/channels/${OFFICIAL_CHANNEL_ID}/members`, { userIds: [mem.id] }),
        403,
        "FORBIDDEN",
      ],
      [
        "remove another member",
        adm.api(A, "DELETE", `/channels/${OFFICIAL_CHANNEL_ID}/members/${mem.id}`),
        403,
        "CANNOT_LEAVE",
      ],
      [
        "create a channel of type official",
        adm.api(A, "POST", "/channels", { type: "official", name: "x" }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "post without a token",
        http(A.url, "POST", "/api/v1/official/messages", { body: { clientMsgId: "a", body: "x" } }),
        401,
        "UNAUTHENTICATED",
      ],
      ["post without clientMsgId", service("/official/messages", { body: "x" }), 400, "INVALID_ARGUMENT"],
      [
        "post a blank body",
        service("/official/messages", { clientMsgId: "b", body: "  " }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "post NUL",
        service("/official/messages", { clientMsgId: "c", body: "a\u0000b" }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "post 5 KiB",
        service("/official/messages", { clientMsgId: "d", body: "x".repeat(5000) }),
        413,
        "PAYLOAD_TOO_LARGE",
      ],
      [
        "a role for a non-member",
        service(`PATCH /official/members/${"0".repeat(23)}1`, { role: "admin" }),
        404,
        "NOT_FOUND",
      ],
      [
        "a role of owner",
        service(`PATCH /official/members/${mem.id}`, { role: "owner" }),
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "a bad user id",
        service("PATCH /official/members/nobody", { role: "admin" }),
        400,
        "INVALID_ARGUMENT",
      ],
    ];
    for (const [name, p, status, code] of cases) {
      const r = await p;
      assert.deepEqual(
        [r.status, (r.body as ErrorBody).error?.code],
        [status, code],
        `${name}: ${JSON.stringify(r.body).slice(0, 200)}`,
      );
    }
    await sleep(300);
    assert.equal((await newest())?.clientMsgId, marker, "no message stored after the marker");
    const now = (await adm.api<ChannelDetailsReply>(A, "GET", `/channels/${OFFICIAL_CHANNEL_ID}`)).body;
    assert.deepEqual(
      [now.channel.posting, now.channel.pinnedSeq, now.members.length],
      [before.channel.posting, before.channel.pinnedSeq, before.members.length],
      "nothing stored, pinned or changed",
    );
    assert.equal((await adm.api(A, "GET", "/me")).status, 200, "still serving");
  });
});
