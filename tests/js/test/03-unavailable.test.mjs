// A document nobody has is reported unavailable to the JS client promptly,
// instead of leaving find() hanging.

import assert from "node:assert/strict";
import { before, test } from "node:test";

import * as A from "@automerge/automerge";
import { generateAutomergeUrl, parseAutomergeUrl } from "@automerge/automerge-repo";

import {
  RawClient,
  docJson,
  findDoc,
  joinMessage,
  makeRepo,
  randomPeerId,
  shutdownRepo,
  startServer,
  useCleanup,
  waitFor,
  waitForPeer,
  waitServerHas,
} from "../lib/helpers.mjs";

useCleanup();
let server;
before(async () => {
  server = await startServer();
});

const FIND_TIMEOUT_MS = 10_000;
// "Well below the timeout": the answer is one round trip to the server.
const PROMPT_MS = 2_000;

async function expectUnavailable(repo, url) {
  const started = performance.now();
  await assert.rejects(findDoc(repo, url, FIND_TIMEOUT_MS), err => {
    assert.match(err.message, /unavailable/, `find() failed for another reason: ${err.message}`);
    return true;
  });
  return performance.now() - started;
}

test("find() of an unknown document rejects as unavailable, promptly (connected client)", { timeout: 30_000 }, async () => {
  const repo = makeRepo(server.wsUrl);
  await waitForPeer(repo);
  const url = generateAutomergeUrl();
  const elapsed = await expectUnavailable(repo, url);
  console.log(`unavailable after ${elapsed.toFixed(0)} ms (connected client)`);
  assert.ok(elapsed < PROMPT_MS, `took ${elapsed.toFixed(0)} ms, expected < ${PROMPT_MS} ms`);
  await shutdownRepo(repo);
});

test("find() of an unknown document made right after the repo starts rejects as unavailable, promptly", { timeout: 30_000 }, async () => {
  // The client waits for the server's `peer` (or 1 s) before asking.
  const repo = makeRepo(server.wsUrl);
  const url = generateAutomergeUrl();
  const elapsed = await expectUnavailable(repo, url);
  console.log(`unavailable after ${elapsed.toFixed(0)} ms (find at start-up)`);
  assert.ok(elapsed < PROMPT_MS, `took ${elapsed.toFixed(0)} ms, expected < ${PROMPT_MS} ms`);
  // The server was asked (it answered), rather than the client giving up alone.
  assert.ok(repo.peers.length > 0, "the server is a peer once find() has settled");
  await shutdownRepo(repo);
});

test("on the wire: a `request` for an unknown document is answered with `doc-unavailable`", { timeout: 30_000 }, async () => {
  const raw = await new RawClient(server.wsUrl).open();
  const me = randomPeerId("raw");
  raw.send(joinMessage(me));
  const peer = (await raw.next()).message;
  assert.equal(peer.type, "peer");

  const { documentId } = parseAutomergeUrl(generateAutomergeUrl());
  const [, data] = A.generateSyncMessage(A.init(), A.initSyncState());
  const started = performance.now();
  raw.send({ type: "request", senderId: me, targetId: peer.senderId, documentId, data });

  // An empty-heads `sync` may come first (as from the JS server); then `doc-unavailable`.
  const seen = [];
  let answer;
  while (!answer) {
    const frame = await raw.next(2_000);
    assert.ok(frame.message, "every frame decodes as CBOR");
    seen.push(frame.message.type);
    if (frame.message.type === "doc-unavailable") answer = frame;
    else assert.equal(frame.message.type, "sync", `unexpected frame before doc-unavailable: ${JSON.stringify(seen)}`);
  }
  const elapsed = answer.at - started;
  console.log(`doc-unavailable after ${elapsed.toFixed(1)} ms; frames: ${seen.join(", ")}`);
  assert.equal(answer.message.documentId, documentId);
  assert.equal(answer.message.targetId, me);
  assert.equal(answer.message.senderId, peer.senderId);
  assert.ok(elapsed < PROMPT_MS);
  assert.equal(raw.isClosed, false, "the connection stays open");
  raw.close();
  await raw.waitClosed();
});

test("a document that appears after `doc-unavailable` is pushed to the client that asked", { timeout: 30_000 }, async () => {
  const bob = makeRepo(server.wsUrl);
  await waitForPeer(bob);
  const url = generateAutomergeUrl();
  const { documentId } = parseAutomergeUrl(url);
  await expectUnavailable(bob, url);
  const handleB = bob.handles[documentId];
  assert.equal(handleB?.state, "unavailable");

  // Another client now brings a document with that ID to the server.
  const alice = makeRepo(server.wsUrl);
  await waitForPeer(alice);
  const content = A.from({ title: "appeared later" });
  const handleA = alice.import(A.save(content), { docId: documentId });
  await waitServerHas(alice, handleA);

  const started = performance.now();
  await waitFor(() => handleB.state === "ready", { timeout: 5_000, label: "the unavailable handle to become ready" });
  console.log(`pushed to the earlier requester ${(performance.now() - started).toFixed(0)} ms after the server had it`);
  assert.deepEqual(docJson(handleB), { title: "appeared later" });
  await shutdownRepo(alice);
  await shutdownRepo(bob);
});

test("on the wire: `doc-unavailable` follows its `sync` at once (back-to-back frames are not held back)", { timeout: 30_000 }, async () => {
  // The server writes the two frames together. A gap of about 40 ms between
  // them is the signature of Nagle's algorithm (no TCP_NODELAY on the accepted
  // socket) meeting the client's delayed ACK; it adds that much to every
  // unavailable find() and to any reply of more than one frame.
  const raw = await new RawClient(server.wsUrl).open();
  const me = randomPeerId("raw");
  raw.send(joinMessage(me));
  const peer = (await raw.next()).message;
  assert.equal(peer.type, "peer");

  const gaps = [];
  for (let i = 0; i < 5; i++) {
    const { documentId } = parseAutomergeUrl(generateAutomergeUrl());
    const [, data] = A.generateSyncMessage(A.init(), A.initSyncState());
    raw.send({ type: "request", senderId: me, targetId: peer.senderId, documentId, data });
    const first = await raw.next(2_000);
    assert.equal(first.message.type, "sync");
    const second = await raw.next(2_000);
    assert.equal(second.message.type, "doc-unavailable");
    gaps.push(second.at - first.at);
  }
  gaps.sort((a, b) => a - b);
  const median = gaps[Math.floor(gaps.length / 2)];
  console.log(`gap between sync and doc-unavailable: ${gaps.map(g => g.toFixed(1)).join(", ")} ms`);
  assert.ok(median < 15, `median gap ${median.toFixed(1)} ms between two frames the server sends together (expected < 15 ms)`);
  raw.close();
  await raw.waitClosed();
});
