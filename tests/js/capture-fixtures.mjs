#!/usr/bin/env node
// Records the exact binary WebSocket frames that the real automerge-repo 2.x
// JavaScript client sends, for golden-byte tests of the Rust CBOR codec.
//
//   node tests/js/capture-fixtures.mjs      (from the repository root)
//
// A raw `ws` WebSocketServer on 127.0.0.1 (ephemeral port) plays the server
// side by hand. It answers each connection as one of two fake server peers,
// chosen by URL path:
//   /hub   the "hub" peer, whose frames are the ones written as fixtures;
//   /side  a second peer, so that the client has something to gossip about
//          (remote heads of another storage ID) and something to relay
//          (an ephemeral message from another peer).
// Each fake peer keeps real Automerge documents and runs the real sync
// protocol, so the client behaves exactly as it does against a real server.
//
// Output: core/tests/fixtures/js-frames/<type>.cbor (one frame per file,
// sometimes <type>-2.cbor for a second variant) and manifest.json.
// README.md in that directory is maintained by hand and left alone.

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { EventEmitter } from "node:events";
import { fileURLToPath } from "node:url";

import * as A from "@automerge/automerge";
import { Repo, generateAutomergeUrl, parseAutomergeUrl, stringifyAutomergeUrl } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { Encoder, decode } from "cbor-x";
import { WebSocketServer } from "ws";

import { MemoryStorageAdapter } from "./lib/helpers.mjs";

import { inspectCbor, pointersOfKind, toJsonValue } from "./cbor-wire.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT_DIR = join(HERE, "..", "..", "core", "tests", "fixtures", "js-frames");

const STEP_TIMEOUT_MS = 8000;
const OVERALL_TIMEOUT_MS = 60000;

// Same encoder settings as @automerge/automerge-repo's helpers/cbor.js, so the
// frames the fake server sends look like what a JS server would send.
const encoder = new Encoder({ tagUint8Array: false, useRecords: false });
const encode = value => encoder.encode(value);

const watchdog = setTimeout(() => {
  console.error(`capture-fixtures: gave up after ${OVERALL_TIMEOUT_MS} ms`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);


// ---------------------------------------------------------------------------
// The fake server.

const IDENTITIES = {
  "/hub": {
    name: "hub",
    peerId: "coachsync-fixture-hub",
    storageId: "5f0c2a9e-8d4b-4c1e-9a37-2b6f1d0e4c81",
    docs: new Map(), // documentId -> { doc, states: Map<peerId, SyncState> }
  },
  "/side": {
    name: "side",
    peerId: "coachsync-fixture-side",
    storageId: "b7e1f3a2-6c5d-4e8f-a1b2-c3d4e5f60718",
    docs: new Map(),
  },
};
const HUB = IDENTITIES["/hub"];
const SIDE = IDENTITIES["/side"];

/** Every frame received from a client, in arrival order. */
const captures = [];
const frameEvents = new EventEmitter();
/** Open connections: { ws, ident, clientId } */
const connections = [];

function send(conn, message) {
  conn.ws.send(encode(message), { binary: true });
}

function syncReply(conn, documentId) {
  const entry = conn.ident.docs.get(documentId);
  const state = entry.states.get(conn.clientId) ?? A.initSyncState();
  const [nextState, data] = A.generateSyncMessage(entry.doc, state);
  entry.states.set(conn.clientId, nextState);
  if (data) {
    send(conn, {
      type: "sync",
      senderId: conn.ident.peerId,
      targetId: conn.clientId,
      documentId,
      data,
    });
  }
}

function receiveSync(conn, documentId, data) {
  const entry = conn.ident.docs.get(documentId);
  const state = entry.states.get(conn.clientId) ?? A.initSyncState();
  const [doc, nextState] = A.receiveSyncMessage(entry.doc, state, data);
  entry.doc = doc;
  entry.states.set(conn.clientId, nextState);
  syncReply(conn, documentId);
}

function onFrame(conn, raw, isBinary) {
  const bytes = new Uint8Array(raw); // copy
  let msg;
  try {
    msg = decode(bytes);
  } catch (err) {
    msg = { undecodable: String(err) };
  }
  const capture = { conn: conn.ident.name, from: conn.clientId ?? msg.senderId, isBinary, bytes, msg };
  captures.push(capture);

  switch (msg.type) {
    case "join":
      conn.clientId = msg.senderId;
      capture.from = msg.senderId;
      send(conn, {
        type: "peer",
        senderId: conn.ident.peerId,
        targetId: msg.senderId,
        selectedProtocolVersion: "1",
        peerMetadata: { storageId: conn.ident.storageId, isEphemeral: false },
      });
      break;
    case "request":
      if (conn.ident.docs.has(msg.documentId)) {
        receiveSync(conn, msg.documentId, msg.data);
      } else {
        send(conn, {
          type: "doc-unavailable",
          senderId: conn.ident.peerId,
          targetId: conn.clientId,
          documentId: msg.documentId,
        });
      }
      break;
    case "sync":
      // Like the stock server: a sync for an unknown document creates it.
      if (!conn.ident.docs.has(msg.documentId)) {
        conn.ident.docs.set(msg.documentId, { doc: A.init(), states: new Map() });
      }
      receiveSync(conn, msg.documentId, msg.data);
      break;
    default:
      // ephemeral, doc-unavailable, remote-subscription-change,
      // remote-heads-changed: recorded only.
      break;
  }
  frameEvents.emit("frame", capture);
}

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
wss.on("connection", (ws, req) => {
  const path = (req.url ?? "/").split("?")[0];
  const ident = IDENTITIES[path];
  if (!ident) {
    ws.close(1008, "unknown path");
    return;
  }
  const conn = { ws, ident, clientId: undefined };
  connections.push(conn);
  ws.on("message", (raw, isBinary) => onFrame(conn, raw, isBinary));
  ws.on("close", () => connections.splice(connections.indexOf(conn), 1));
});
await new Promise((resolve, reject) => {
  wss.once("listening", resolve);
  wss.once("error", reject);
});
const BASE_URL = `ws://127.0.0.1:${wss.address().port}`;

function connOf(ident, clientId) {
  const conn = connections.find(c => c.ident === ident && c.clientId === clientId);
  if (!conn) throw new Error(`no ${ident.name} connection for ${clientId}`);
  return conn;
}

// ---------------------------------------------------------------------------
// Waiting helpers (all bounded).

function waitForFrame(label, predicate, { after = 0 } = {}) {
  const found = captures.slice(after).find(predicate);
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      frameEvents.off("frame", listener);
      reject(new Error(`timed out waiting for ${label}`));
    }, STEP_TIMEOUT_MS);
    function listener(capture) {
      if (predicate(capture)) {
        clearTimeout(timer);
        frameEvents.off("frame", listener);
        resolve(capture);
      }
    }
    frameEvents.on("frame", listener);
  });
}

async function waitUntil(label, condition) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await sleep(10);
  }
}

function withTimeout(label, promise) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: ${label}`)), STEP_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

const onHubFrom = (clientId, type, extra = () => true) => c =>
  c.conn === "hub" && c.from === clientId && c.msg.type === type && extra(c.msg);

function headsEqual(a, b) {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join();
}

// ---------------------------------------------------------------------------
// Scenario.

const selected = []; // { file, capture, scenario }
const pick = (file, capture, scenario) => selected.push({ file, capture, scenario });

// Client A: storage (so it has a storageId), remote heads gossiping on, and
// two connections (hub and side).
const storageA = new MemoryStorageAdapter();
const repoA = new Repo({
  network: [
    new WebSocketClientAdapter(`${BASE_URL}/hub`),
    new WebSocketClientAdapter(`${BASE_URL}/side`),
  ],
  storage: storageA,
  enableRemoteHeadsGossiping: true,
});
const A_ID = repoA.peerId;

pick(
  "join.cbor",
  await waitForFrame("join from client A", onHubFrom(A_ID, "join")),
  "First frame of a Repo with a storage adapter (so peerMetadata.storageId is set) on connect.",
);
await waitUntil("client A to see both server peers", () => repoA.peers.length === 2);
await sleep(50); // the share policy that marks both peers as "generous" resolves asynchronously

// remote-subscription-change (1): the application subscribes to remote heads.
repoA.subscribeToRemotes([HUB.storageId]);
pick(
  "remote-subscription-change.cbor",
  await waitForFrame(
    "remote-subscription-change from subscribeToRemotes",
    onHubFrom(A_ID, "remote-subscription-change", m => m.remove === undefined),
  ),
  "repo.subscribeToRemotes([hub storageId]) with gossiping on: sent to every generous peer; `remove` is present with the value undefined.",
);

// remote-subscription-change (2): the hub asks client A about the side peer's
// storage ID; the client forwards that subscription to its generous peers.
send(connOf(HUB, A_ID), {
  type: "remote-subscription-change",
  senderId: HUB.peerId,
  targetId: A_ID,
  add: [SIDE.storageId],
});
pick(
  "remote-subscription-change-2.cbor",
  await waitForFrame(
    "forwarded remote-subscription-change",
    onHubFrom(A_ID, "remote-subscription-change", m => Array.isArray(m.remove)),
  ),
  "Forwarded subscription: the hub sent remote-subscription-change {add: [side storageId]}; the client passes it on to all generous peers (the hub included) with both `add` and an empty `remove` array.",
);

// sync: client A creates a document, then changes it.
const handleD = repoA.create({ title: "fixture: created by the client", sessions: [] });
const D = handleD.documentId;
pick(
  "sync.cbor",
  await waitForFrame("first sync for the new document", onHubFrom(A_ID, "sync", m => m.documentId === D)),
  "repo.create(): the client's first sync message for the new document (heads and an empty have-list, no changes yet).",
);
await waitUntil(
  "hub and side to hold the new document",
  () =>
    [HUB, SIDE].every(ident => ident.docs.has(D) && headsEqual(A.getHeads(ident.docs.get(D).doc), A.getHeads(handleD.doc()))),
);
const beforeChange = captures.length;
handleD.change(doc => {
  doc.sessions.push({ drill: "rondo", minutes: 12 });
});
pick(
  "sync-2.cbor",
  await waitForFrame(
    "sync carrying the local change",
    onHubFrom(A_ID, "sync", m => m.documentId === D && A.decodeSyncMessage(m.data).changes.length > 0),
    { after: beforeChange },
  ),
  "handle.change() on the created document: the sync message carrying the new change (sent after the ~100 ms throttle).",
);

// remote-heads-changed: the hub subscribed to the side peer's storage ID, so
// every time the side peer's heads for D change, client A tells the hub. The
// first report comes when the side peer has just created its (still empty)
// copy of D, so its heads are []; later ones carry the side peer's heads.
const rhcAboutSide = extra =>
  onHubFrom(A_ID, "remote-heads-changed", m => m.documentId === D && SIDE.storageId in m.newHeads && extra(m.newHeads[SIDE.storageId]));
pick(
  "remote-heads-changed.cbor",
  await waitForFrame("remote-heads-changed with empty heads", rhcAboutSide(h => h.heads.length === 0)),
  "Gossip: the hub subscribed (via remote-subscription-change) to the side peer's storageId; the client reports the side peer's heads for the document to the hub. This first report is sent when the side peer has created its empty copy: `heads` is [].",
);
pick(
  "remote-heads-changed-2.cbor",
  await waitForFrame("remote-heads-changed with heads", rhcAboutSide(h => h.heads.length > 0)),
  "Gossip, as remote-heads-changed.cbor, once the side peer holds the document: `heads` lists bs58check-encoded change hashes.",
);

// ephemeral (1): the application broadcasts on the handle.
const beforeBroadcast = captures.length;
handleD.broadcast({ kind: "cursor", drill: "rondo", position: 3 });
pick(
  "ephemeral.cbor",
  await waitForFrame(
    "ephemeral from handle.broadcast",
    onHubFrom(A_ID, "ephemeral", m => m.senderId === A_ID),
    { after: beforeBroadcast },
  ),
  "handle.broadcast({kind: 'cursor', drill: 'rondo', position: 3}): `data` is the cbor-x encoding of that object; count starts at 1 per Repo.",
);

// ephemeral (2): the side peer broadcasts; client A relays it to the hub.
send(connOf(SIDE, A_ID), {
  type: "ephemeral",
  senderId: SIDE.peerId,
  targetId: A_ID,
  count: 7,
  sessionId: "side-session-1",
  documentId: D,
  data: encode({ kind: "presence", user: "side" }),
});
pick(
  "ephemeral-2.cbor",
  await waitForFrame(
    "relayed ephemeral",
    onHubFrom(A_ID, "ephemeral", m => m.senderId === SIDE.peerId),
  ),
  "Relay: the side peer sent an ephemeral message (count 7, sessionId 'side-session-1'); the client forwards it to the hub with senderId, count, sessionId and data unchanged and targetId rewritten.",
);

// request: client A finds a document it does not have; the hub has it.
const hDoc = A.from({ title: "fixture: served by the hub", drills: ["rondo", "pressing"] });
const H = parseAutomergeUrl(generateAutomergeUrl()).documentId;
HUB.docs.set(H, { doc: hDoc, states: new Map() });
const foundH = withTimeout("find() of the hub's document", repoA.find(stringifyAutomergeUrl({ documentId: H })));
pick(
  "request.cbor",
  await waitForFrame("request for the hub's document", onHubFrom(A_ID, "request", m => m.documentId === H)),
  "repo.find(url) for a document the client does not have (the hub has it and answers with sync; the side peer answers doc-unavailable).",
);
await foundH;

// doc-unavailable: the hub requests a document that nobody has.
const U = parseAutomergeUrl(generateAutomergeUrl()).documentId;
send(connOf(HUB, A_ID), {
  type: "request",
  senderId: HUB.peerId,
  targetId: A_ID,
  documentId: U,
  data: A.generateSyncMessage(A.init(), A.initSyncState())[1],
});
pick(
  "doc-unavailable.cbor",
  await waitForFrame("doc-unavailable", onHubFrom(A_ID, "doc-unavailable", m => m.documentId === U)),
  "The hub sent `request` for an unknown document; the client asked its other peer (side answered doc-unavailable), replied to the hub with an empty sync, then doc-unavailable.",
);

// Client B: no storage adapter (storageId undefined, isEphemeral true).
const repoB = new Repo({ network: [new WebSocketClientAdapter(`${BASE_URL}/hub`)] });
const B_ID = repoB.peerId;
pick(
  "join-2.cbor",
  await waitForFrame("join from client B", onHubFrom(B_ID, "join")),
  "First frame of a Repo without a storage adapter: peerMetadata.storageId is present with the value undefined and isEphemeral is true.",
);
await waitUntil("client B to see the hub", () => repoB.peers.length === 1);

// ---------------------------------------------------------------------------
// Shut everything down.

await sleep(200); // let throttled sync messages drain
const storageIdA = await repoA.storageId();
for (const repo of [repoA, repoB]) {
  try {
    await withTimeout("repo shutdown", repo.shutdown());
  } catch (err) {
    // shutdown() disconnects the adapters first, then flush()es every handle;
    // flushing the handle of the unavailable document throws "DocHandle is
    // not ready", which is harmless here.
    if (!/not ready/.test(err.message)) console.warn(`warning: repo shutdown: ${err.message}`);
  }
}
for (const client of wss.clients) client.terminate();
await new Promise(resolve => wss.close(resolve));

// ---------------------------------------------------------------------------
// Write the fixtures.

const textFrames = captures.filter(c => !c.isBinary);
if (textFrames.length) throw new Error(`client sent ${textFrames.length} non-binary frame(s)`);

function pkgVersion(name) {
  return JSON.parse(readFileSync(join(HERE, "node_modules", name, "package.json"), "utf8")).version;
}

function describeSyncData(data) {
  const m = A.decodeSyncMessage(data);
  return {
    first_byte: Buffer.from(data.subarray(0, 1)).toString("hex"),
    heads: m.heads,
    need: m.need,
    have: m.have.length,
    changes: m.changes.length,
  };
}

mkdirSync(OUT_DIR, { recursive: true });
for (const name of readdirSync(OUT_DIR)) {
  if (name.endsWith(".cbor") || name === "manifest.json") rmSync(join(OUT_DIR, name));
}

const frames = selected.map(({ file, capture, scenario }) => {
  const { value, wire } = inspectCbor(capture.bytes);
  // Cross-check the raw walker against cbor-x, the client's own decoder.
  if (JSON.stringify(toJsonValue(value)) !== JSON.stringify(toJsonValue(decode(capture.bytes)))) {
    throw new Error(`${file}: cbor-wire and cbor-x disagree on the decoded value`);
  }
  const notes = {};
  if (value.type === "sync" || value.type === "request") notes.data = describeSyncData(value.data);
  if (value.type === "ephemeral") notes.data = toJsonValue(decode(value.data));
  writeFileSync(join(OUT_DIR, file), capture.bytes);
  return {
    file,
    type: value.type,
    from: capture.from,
    to: capture.conn === "hub" ? HUB.peerId : SIDE.peerId,
    scenario,
    size: capture.bytes.length,
    sha256: createHash("sha256").update(capture.bytes).digest("hex"),
    fields: toJsonValue(value),
    bytes_fields: pointersOfKind(wire, "bytes"),
    float64_fields: pointersOfKind(wire, "float64"),
    undefined_fields: pointersOfKind(wire, "undefined"),
    wire,
    ...(Object.keys(notes).length ? { notes } : {}),
  };
});

const observed = {};
for (const c of captures) {
  const key = `${c.conn}:${c.msg.type}`;
  observed[key] = (observed[key] ?? 0) + 1;
}

const manifest = {
  description:
    "Binary WebSocket frames sent by the real automerge-repo JavaScript client, one frame per .cbor file. Regenerate with `node tests/js/capture-fixtures.mjs`.",
  versions: {
    node: process.version,
    "@automerge/automerge-repo": pkgVersion("@automerge/automerge-repo"),
    "@automerge/automerge-repo-network-websocket": pkgVersion("@automerge/automerge-repo-network-websocket"),
    "@automerge/automerge": pkgVersion("@automerge/automerge"),
    "cbor-x": pkgVersion("cbor-x"),
    ws: pkgVersion("ws"),
  },
  client_encoder: "cbor-x `new Encoder({ tagUint8Array: false, useRecords: false })` (@automerge/automerge-repo dist/helpers/cbor.js)",
  conventions: {
    fields: "decoded frame as JSON: byte strings as lowercase hex, CBOR undefined as null",
    bytes_fields: "JSON pointers of values that are CBOR byte strings (major type 2) on the wire",
    float64_fields: "JSON pointers of numbers written as CBOR float64 (0xfb) on the wire",
    undefined_fields: "JSON pointers of keys present on the wire with CBOR undefined (0xf7)",
    wire: "every item by JSON pointer: CBOR kind, then its head bytes in hex (initial byte plus length/value argument; floats: initial byte only)",
    notes: "sync/request: the automerge sync message in `data` decoded with Automerge.decodeSyncMessage; ephemeral: `data` decoded with cbor-x",
  },
  peers: {
    client_a: { peerId: A_ID, storageId: storageIdA, isEphemeral: false, enableRemoteHeadsGossiping: true },
    client_b: { peerId: B_ID, storageId: null, isEphemeral: true, enableRemoteHeadsGossiping: false },
    hub: { peerId: HUB.peerId, storageId: HUB.storageId },
    side: { peerId: SIDE.peerId, storageId: SIDE.storageId },
  },
  documents: { created_by_client: D, served_by_hub: H, unknown: U },
  observed_frames: observed,
  frames,
};
writeFileSync(join(OUT_DIR, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");

for (const f of frames) {
  const extra = [f.float64_fields.length && `float64 ${f.float64_fields.join(",")}`, f.undefined_fields.length && `undefined ${f.undefined_fields.join(",")}`]
    .filter(Boolean)
    .join("; ");
  console.log(`${f.file.padEnd(36)} ${f.type.padEnd(28)} ${String(f.size).padStart(5)} B  ${extra}`);
}
console.log(`observed: ${JSON.stringify(observed)}`);
console.log(`wrote ${frames.length} frames and manifest.json to ${OUT_DIR}`);

clearTimeout(watchdog);
// The client adapters may still hold short timers (their 1 s "ready" fallback);
// exit explicitly rather than waiting for them.
process.exit(0);
