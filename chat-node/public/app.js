// VibeTalk web client: plain JS over the HTTP API and Socket.IO (see docs/protocol.md).
const API = "/api/v1";
const $ = (id) => document.getElementById(id);

const state = {
  token: localStorage.getItem("vt.token"),
  me: null,
  socket: null,
  channels: new Map(), // id → ChannelSummary
  nextCursor: null,
  current: null, // channel id
  messages: new Map(), // channel id → Map(seq → message)
  pending: new Map(), // clientMsgId → {channelId, body}
  members: new Map(), // channel id → Map(userId → member)
  users: new Map(), // user id → {username, displayName}
  presence: new Map(), // user id → {online, lastSeenAt}
  typing: new Map(), // channel id → Map(userId → timeout)
  typingSentAt: 0,
  typingStop: null,
  attachment: null, // FileInfo
};

// ---------------------------------------------------------------- HTTP

async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(API + path, { method, headers, body: payload });
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) {
    if (res.status === 401 && path !== "/auth/login") logout();
    throw new Error(data?.error?.message ?? `HTTP ${res.status}`);
  }
  return data;
}

// ---------------------------------------------------------------- auth

$("auth-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const mode = e.submitter?.dataset.mode ?? "login";
  const body = { username: $("auth-username").value.trim(), password: $("auth-password").value };
  const display = $("auth-display").value.trim();
  if (mode === "register" && display) body.displayName = display;
  try {
    const r = await api("POST", `/auth/${mode}`, body);
    state.token = r.token;
    localStorage.setItem("vt.token", r.token);
    await start();
  } catch (err) {
    $("auth-error").textContent = err.message;
  }
});

$("logout").addEventListener("click", () => logout());

function logout() {
  localStorage.removeItem("vt.token");
  state.token = null;
  state.socket?.disconnect();
  location.reload();
}

// ---------------------------------------------------------------- start

async function start() {
  try {
    const { user } = await api("GET", "/me");
    state.me = user;
    state.users.set(user.id, user);
  } catch {
    $("auth").hidden = false;
    return;
  }
  $("auth").hidden = true;
  $("app").hidden = false;
  $("me-name").textContent = state.me.displayName;
  await loadChannels(true);
  connect();
}

/**
 * Transports: HTTP long polling first, upgraded to a WebSocket when one gets through (Socket.IO's
 * default), so a proxy or network that refuses WebSockets still chats. `?transport=polling` or
 * `?transport=websocket` in the page's address forces one (for tests and for diagnosing a proxy).
 */
function transports() {
  const forced = new URLSearchParams(location.search).get("transport");
  if (forced === "polling" || forced === "websocket") return [forced];
  return ["polling", "websocket"];
}

function connect() {
  const socket = io({ auth: { token: state.token }, transports: transports() });
  state.socket = socket;
  socket.on("connect", () => {
    $("conn-state").classList.add("on");
    void syncAll();
    subscribePresence();
  });
  socket.on("disconnect", () => $("conn-state").classList.remove("on"));
  socket.on("connect_error", (err) => {
    if (err.data?.code === "UNAUTHENTICATED") logout();
    // A draining node refused the handshake (the proxy still sent us there): try again shortly.
    else if (err.data?.code === "UNAVAILABLE") setTimeout(() => socket.connect(), 300 + Math.random() * 700);
  });
  // A draining node asks us to go: reconnect (the load balancer picks another node).
  socket.on("reconnect", () => {
    socket.disconnect();
    setTimeout(() => socket.connect(), 200 + Math.random() * 800);
  });
  socket.on("message", onMessage);
  socket.on("receipt", onReceipt);
  socket.on("typing", onTyping);
  socket.on("presence", (p) => {
    state.presence.set(p.userId, p);
    renderChannels();
    renderHeader();
  });
  socket.on("channel", onChannelEvent);
  // An acked message the server could not store (parked): it will not appear in the channel.
  socket.on("message:failed", (f) => {
    state.pending.delete(f.clientMsgId);
    if (f.channelId === state.current) $("chat-error").textContent = `not delivered: ${f.message}`;
    renderMessages();
  });
}

function emit(event, payload) {
  return new Promise((resolve) => {
    state.socket.timeout(10000).emit(event, payload, (err, reply) => {
      resolve(err ? { ok: false, error: { code: "UNAVAILABLE", message: "no reply" } } : reply);
    });
  });
}

// ---------------------------------------------------------------- channels

async function loadChannels(reset) {
  const q = reset || !state.nextCursor ? "" : `?cursor=${encodeURIComponent(state.nextCursor)}`;
  const r = await api("GET", `/channels${q}`);
  if (reset) state.channels.clear();
  for (const c of r.channels) {
    state.channels.set(c.id, c);
    if (c.peer) state.users.set(c.peer.id, c.peer);
  }
  state.nextCursor = r.nextCursor;
  $("more-channels").hidden = !r.nextCursor;
  renderChannels();
}
$("more-channels").addEventListener("click", () => void loadChannels(false));

function titleOf(c) {
  return c.type === "direct" ? (c.peer?.displayName ?? "direct chat") : c.name;
}

function renderChannels() {
  const list = $("channel-list");
  list.replaceChildren();
  const sorted = [...state.channels.values()].sort((a, b) => (a.lastMessageAt < b.lastMessageAt ? 1 : -1));
  for (const c of sorted) {
    const li = document.createElement("li");
    if (c.id === state.current) li.classList.add("active");
    const name = document.createElement("span");
    name.className = "name";
    if (c.peer) {
      const dot = document.createElement("span");
      dot.className = "dot" + (state.presence.get(c.peer.id)?.online ? " online" : "");
      name.append(dot);
    }
    name.append(titleOf(c));
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = c.lastMessage
      ? new Date(c.lastMessage.createdAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
      : "";
    const preview = document.createElement("span");
    preview.className = "preview";
    preview.textContent = c.lastMessage
      ? c.lastMessage.body || (c.lastMessage.hasFiles ? "📎 file" : "")
      : "no messages yet";
    li.append(name, time, preview);
    const unread = c.id === state.current ? 0 : c.unread;
    if (unread > 0) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = String(unread);
      li.append(badge);
    }
    li.addEventListener("click", () => void openChannel(c.id));
    list.append(li);
  }
}

function onChannelEvent({ channel, change }) {
  if (change === "removed") {
    state.channels.delete(channel.id);
    if (state.current === channel.id) {
      state.current = null;
      $("composer").hidden = true;
      $("messages").replaceChildren();
    }
    renderChannels();
    return;
  }
  const prev = state.channels.get(channel.id);
  if (prev) {
    const lastSeq = Math.max(prev.lastSeq, channel.lastSeq);
    Object.assign(prev, channel, {
      lastSeq,
      lastMessage: prev.lastSeq > channel.lastSeq ? prev.lastMessage : channel.lastMessage,
      unread: Math.max(0, lastSeq - prev.lastReadSeq),
    });
  } else void loadChannels(true).then(subscribePresence);
  if (channel.id === state.current) void loadMembers(channel.id).then(renderMessages);
  renderChannels();
  renderHeader();
}

$("new-chat-user").addEventListener("input", async (e) => {
  const q = e.target.value.trim().toLowerCase();
  if (q.length < 1) return;
  try {
    const r = await api("GET", `/users?query=${encodeURIComponent(q)}&limit=8`);
    const dl = $("user-suggestions");
    dl.replaceChildren(
      ...r.users.map((u) => {
        const o = document.createElement("option");
        o.value = u.username;
        o.label = u.displayName;
        return o;
      }),
    );
  } catch {
    /* ignore */
  }
});

async function userByName(username) {
  const r = await api("GET", `/users?query=${encodeURIComponent(username)}&limit=1`);
  const u = r.users.find((x) => x.username === username);
  if (!u) throw new Error(`no user ${username}`);
  return u;
}

$("new-chat").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const u = await userByName($("new-chat-user").value.trim().toLowerCase());
    const { channel } = await api("POST", "/channels", { type: "direct", userId: u.id });
    $("new-chat-user").value = "";
    await loadChannels(true);
    subscribePresence();
    await openChannel(channel.id);
  } catch (err) {
    $("chat-error").textContent = err.message;
  }
});

$("new-group").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const names = $("new-group-members")
      .value.split(",")
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean);
    const users = await Promise.all(names.map(userByName));
    const { channel } = await api("POST", "/channels", {
      type: "group",
      name: $("new-group-name").value.trim(),
      memberIds: users.map((u) => u.id),
    });
    $("new-group-name").value = "";
    $("new-group-members").value = "";
    await loadChannels(true);
    await openChannel(channel.id);
  } catch (err) {
    $("chat-error").textContent = err.message;
  }
});

// ---------------------------------------------------------------- messages

function store(channelId) {
  let m = state.messages.get(channelId);
  if (!m) {
    m = new Map();
    state.messages.set(channelId, m);
  }
  return m;
}

/** Highest seq held without a gap (sync resumes from there). */
function contiguous(channelId) {
  const m = store(channelId);
  const seqs = [...m.keys()].sort((a, b) => a - b);
  let top = seqs.length ? seqs[0] - 1 : 0;
  for (const s of seqs) {
    if (s !== top + 1) break;
    top = s;
  }
  return top;
}

function addMessages(list) {
  const touched = new Set();
  for (const msg of list) {
    const m = store(msg.channelId);
    if (m.has(msg.seq)) continue; // a duplicate delivery
    m.set(msg.seq, msg);
    state.pending.delete(msg.clientMsgId);
    touched.add(msg.channelId);
    const c = state.channels.get(msg.channelId);
    if (c && msg.seq > c.lastSeq) {
      c.lastSeq = msg.seq;
      c.lastMessage = {
        seq: msg.seq,
        senderId: msg.senderId,
        body: msg.body.slice(0, 120),
        hasFiles: msg.fileIds.length > 0,
        createdAt: msg.createdAt,
      };
      c.lastMessageAt = msg.createdAt;
      if (msg.senderId === state.me.id) c.lastReadSeq = Math.max(c.lastReadSeq, msg.seq);
      c.unread = Math.max(0, c.lastSeq - c.lastReadSeq);
    }
  }
  return touched;
}

function onMessage(msg) {
  const m = store(msg.channelId);
  const gap = m.size > 0 && msg.seq > Math.max(...m.keys()) + 1;
  const touched = addMessages([msg]);
  if (!state.channels.has(msg.channelId)) void loadChannels(true);
  if (gap) void syncChannels([msg.channelId]);
  if (touched.size === 0) return;
  if (msg.senderId !== state.me.id) {
    const visible = msg.channelId === state.current && document.visibilityState === "visible";
    void emit("receipt", { channelId: msg.channelId, seq: msg.seq, kind: visible ? "read" : "delivered" });
    if (visible) markRead(msg.channelId, msg.seq);
  }
  renderChannels();
  if (msg.channelId === state.current) renderMessages();
}

async function syncChannels(ids) {
  const channels = ids.map((id) => ({ channelId: id, afterSeq: contiguous(id) }));
  for (let i = 0; i < channels.length; i += 100) {
    const r = await emit("sync", { channels: channels.slice(i, i + 100) });
    if (!r.ok) continue;
    addMessages(r.messages);
    if (r.more.length) await syncChannels(r.more);
  }
  renderChannels();
  if (state.current && ids.includes(state.current)) renderMessages();
}

function syncAll() {
  const known = [...state.messages.keys()].filter((id) => state.channels.has(id));
  return known.length ? syncChannels(known) : Promise.resolve();
}

async function openChannel(id) {
  state.current = id;
  $("composer").hidden = false;
  $("chat-error").textContent = "";
  const m = store(id);
  if (m.size === 0) {
    const r = await api("GET", `/channels/${encodeURIComponent(id)}/messages?limit=50`);
    addMessages(r.messages);
    $("older").hidden = r.messages.length < 50;
  } else {
    await syncChannels([id]);
  }
  await loadMembers(id);
  const c = state.channels.get(id);
  if (c) c.lastSeq = Math.max(c.lastSeq, ...store(id).keys());
  if (c && c.lastSeq > c.lastReadSeq) {
    void emit("receipt", { channelId: id, seq: c.lastSeq, kind: "read" });
    markRead(id, c.lastSeq);
  }
  renderChannels();
  renderHeader();
  renderMessages(true);
  $("body").focus();
}

function markRead(channelId, seq) {
  const c = state.channels.get(channelId);
  if (c) {
    c.lastReadSeq = Math.max(c.lastReadSeq, seq);
    c.unread = Math.max(0, c.lastSeq - c.lastReadSeq);
  }
}

$("older").addEventListener("click", async () => {
  const id = state.current;
  const first = Math.min(...store(id).keys());
  const r = await api("GET", `/channels/${encodeURIComponent(id)}/messages?beforeSeq=${first}&limit=50`);
  addMessages(r.messages);
  $("older").hidden = r.messages.length < 50;
  renderMessages();
});

async function loadMembers(id) {
  const r = await api("GET", `/channels/${encodeURIComponent(id)}`);
  state.members.set(id, new Map(r.members.map((m) => [m.userId, m])));
  for (const m of r.members)
    state.users.set(m.userId, { id: m.userId, username: m.username, displayName: m.displayName });
  const c = state.channels.get(id);
  // The stored head may lag live messages by a moment: never move backwards.
  if (c)
    Object.assign(c, r.channel, {
      lastSeq: Math.max(c.lastSeq, r.channel.lastSeq),
      lastMessage: c.lastSeq > r.channel.lastSeq ? c.lastMessage : r.channel.lastMessage,
    });
}

function onReceipt(r) {
  const members = state.members.get(r.channelId);
  const m = members?.get(r.userId);
  if (m) {
    if (r.kind === "read") m.lastReadSeq = Math.max(m.lastReadSeq, r.seq);
    m.lastDeliveredSeq = Math.max(m.lastDeliveredSeq, r.seq);
  }
  if (r.userId === state.me.id && r.kind === "read") {
    markRead(r.channelId, r.seq);
    renderChannels();
  }
  if (r.channelId === state.current) renderMessages();
}

/** ✓ stored, ✓✓ delivered to every other member, blue ✓✓ read by all. */
function ticks(msg) {
  const others = [...(state.members.get(msg.channelId)?.values() ?? [])].filter(
    (m) => m.userId !== state.me.id,
  );
  if (others.length === 0) return { text: "✓", read: false };
  if (others.every((m) => m.lastReadSeq >= msg.seq)) return { text: "✓✓", read: true };
  if (others.every((m) => m.lastDeliveredSeq >= msg.seq)) return { text: "✓✓", read: false };
  return { text: "✓", read: false };
}

function renderMessages(scroll) {
  const ol = $("messages");
  const nearBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 80;
  ol.replaceChildren();
  const id = state.current;
  if (!id) return;
  const group = state.channels.get(id)?.type === "group";
  const list = [...store(id).values()].sort((a, b) => a.seq - b.seq);
  for (const msg of list) ol.append(renderMessage(msg, group));
  for (const [clientMsgId, p] of state.pending) {
    if (p.channelId !== id) continue;
    const li = document.createElement("li");
    li.className = "msg mine pending";
    li.dataset.client = clientMsgId;
    li.textContent = p.body;
    ol.append(li);
  }
  if (scroll || nearBottom) ol.scrollTop = ol.scrollHeight;
}

function renderMessage(msg, group) {
  const li = document.createElement("li");
  const mine = msg.senderId === state.me.id;
  li.className = "msg" + (mine ? " mine" : "");
  if (group && !mine) {
    const s = document.createElement("div");
    s.className = "sender";
    s.textContent = state.users.get(msg.senderId)?.displayName ?? "someone";
    li.append(s);
  }
  if (msg.body) li.append(document.createTextNode(msg.body));
  for (const fileId of msg.fileIds) li.append(renderFile(fileId));
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = new Date(msg.createdAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (mine) {
    const t = ticks(msg);
    const span = document.createElement("span");
    span.className = "ticks" + (t.read ? " read" : "");
    span.textContent = " " + t.text;
    meta.append(span);
  }
  li.append(meta);
  return li;
}

const fileCache = new Map(); // id → Promise<{info, url}>

function fetchFile(id) {
  if (!fileCache.has(id)) {
    fileCache.set(
      id,
      (async () => {
        const { file } = await api("GET", `/files/${id}/meta`);
        const res = await fetch(`${API}/files/${id}`, {
          headers: { authorization: `Bearer ${state.token}` },
        });
        const blob = await res.blob();
        return { info: file, url: window.URL.createObjectURL(blob) };
      })(),
    );
  }
  return fileCache.get(id);
}

function renderFile(id) {
  const holder = document.createElement("div");
  holder.textContent = "📎 …";
  fetchFile(id).then(
    ({ info, url }) => {
      holder.replaceChildren();
      if (info.contentType.startsWith("image/")) {
        const img = document.createElement("img");
        img.src = url;
        img.alt = info.name;
        holder.append(img);
      }
      const a = document.createElement("a");
      a.href = url;
      a.download = info.name;
      a.textContent = `📎 ${info.name} (${Math.ceil(info.size / 1024)} KiB)`;
      holder.append(a);
    },
    () => (holder.textContent = "📎 file unavailable"),
  );
  return holder;
}

// ---------------------------------------------------------------- composer

$("composer").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = $("body").value;
  const fileIds = state.attachment ? [state.attachment.id] : [];
  if (!body.trim() && fileIds.length === 0) return;
  const channelId = state.current;
  const clientMsgId = crypto.randomUUID();
  state.pending.set(clientMsgId, { channelId, body });
  $("body").value = "";
  state.attachment = null;
  $("attachment").textContent = "";
  sendTyping(false);
  renderMessages(true);
  // Retry with the same clientMsgId until the node confirms: the server keeps one copy.
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await emit("message:send", { channelId, clientMsgId, body, fileIds });
    if (r.ok) return;
    if (r.error.code !== "UNAVAILABLE" && r.error.code !== "RATE_LIMITED") {
      $("chat-error").textContent = r.error.message;
      state.pending.delete(clientMsgId);
      renderMessages();
      return;
    }
    await new Promise((res) => setTimeout(res, 500 * (attempt + 1)));
  }
  $("chat-error").textContent = "not sent: the server is unavailable";
});

$("file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  if (!file || !state.current) return;
  const form = new FormData();
  form.append("file", file, file.name);
  $("attachment").textContent = `uploading ${file.name}…`;
  try {
    const r = await api("POST", `/files?channelId=${encodeURIComponent(state.current)}`, form);
    state.attachment = r.file;
    $("attachment").textContent = `📎 ${r.file.name}`;
  } catch (err) {
    $("attachment").textContent = "";
    $("chat-error").textContent = err.message;
  }
});

function sendTyping(typing) {
  if (!state.current || !state.socket?.connected) return;
  state.socket.emit("typing", { channelId: state.current, typing });
}

$("body").addEventListener("input", () => {
  const now = Date.now();
  if (now - state.typingSentAt > 3000) {
    state.typingSentAt = now;
    sendTyping(true);
  }
  clearTimeout(state.typingStop);
  state.typingStop = setTimeout(() => {
    state.typingSentAt = 0;
    sendTyping(false);
  }, 4000);
});

function onTyping({ channelId, userId, typing }) {
  let m = state.typing.get(channelId);
  if (!m) {
    m = new Map();
    state.typing.set(channelId, m);
  }
  clearTimeout(m.get(userId));
  if (typing)
    m.set(
      userId,
      setTimeout(() => onTyping({ channelId, userId, typing: false }), 6000),
    );
  else m.delete(userId);
  renderHeader();
}

// ---------------------------------------------------------------- presence + header

function subscribePresence() {
  if (!state.socket?.connected) return;
  const peers = [...state.channels.values()]
    .map((c) => c.peer?.id)
    .filter(Boolean)
    .slice(0, 500);
  void emit("presence:subscribe", { userIds: peers }).then((r) => {
    if (!r.ok) return;
    for (const p of r.presence) state.presence.set(p.userId, p);
    renderChannels();
    renderHeader();
  });
}

function renderHeader() {
  const c = state.current && state.channels.get(state.current);
  $("chat-title").textContent = c ? titleOf(c) : "Pick a chat";
  let presence = "";
  if (c?.peer) {
    const p = state.presence.get(c.peer.id);
    presence = p?.online
      ? "online"
      : p?.lastSeenAt
        ? `last seen ${new Date(p.lastSeenAt).toLocaleString()}`
        : "offline";
  } else if (c) presence = `${c.memberCount} members`;
  $("chat-presence").textContent = presence;
  const typers = [...(state.typing.get(state.current)?.keys() ?? [])].map(
    (u) => state.users.get(u)?.displayName ?? "someone",
  );
  $("chat-typing").textContent = typers.length ? `${typers.join(", ")} typing…` : "";
}

document.addEventListener("visibilitychange", () => {
  const c = state.current && state.channels.get(state.current);
  if (document.visibilityState === "visible" && c && c.lastSeq > c.lastReadSeq) {
    void emit("receipt", { channelId: c.id, seq: c.lastSeq, kind: "read" });
    markRead(c.id, c.lastSeq);
    renderChannels();
  }
});

if (state.token) void start();
else $("auth").hidden = false;
