// The server answers `join` with `peer` promptly (the JS client gives up
// waiting after 1 s), and announces a storageId that is stable across
// connections and restarts.

import assert from "node:assert/strict";
import { before, test } from "node:test";

import { RawClient, joinMessage, randomPeerId, startServer, useCleanup } from "../lib/helpers.mjs";

useCleanup();
let server;
before(async () => {
  server = await startServer();
});

// "Well within 1 s": the JS client counts as ready after 1 s regardless.
const PEER_REPLY_MS = 250;

/** Opens a raw socket, joins, and returns the `peer` reply and its latency. */
async function join({ peerMetadata } = {}) {
  const raw = await new RawClient(server.wsUrl).open();
  const me = randomPeerId("raw");
  const sentAt = performance.now();
  raw.send(joinMessage(me, peerMetadata));
  const frame = await raw.next(2_000);
  const latency = frame.at - sentAt;
  raw.close();
  await raw.waitClosed();
  return { me, reply: frame.message, latency };
}

function checkPeer({ me, reply, latency }) {
  assert.ok(reply, "the reply decodes as CBOR");
  assert.equal(reply.type, "peer", `first frame is ${JSON.stringify(reply)}`);
  assert.equal(reply.selectedProtocolVersion, "1");
  assert.equal(reply.targetId, me, "targetId is our senderId");
  assert.equal(typeof reply.senderId, "string");
  assert.ok(reply.senderId.length > 0);
  assert.notEqual(reply.senderId, me);
  assert.equal(typeof reply.peerMetadata, "object");
  assert.equal(typeof reply.peerMetadata.storageId, "string", "peerMetadata.storageId is a string");
  assert.ok(reply.peerMetadata.storageId.length > 0);
  assert.equal(reply.peerMetadata.isEphemeral, false, "the server is not ephemeral");
  assert.ok(latency < PEER_REPLY_MS, `peer after ${latency.toFixed(1)} ms, expected < ${PEER_REPLY_MS} ms`);
}

test("`peer` answers `join` promptly, with storageId stable across connections and restarts", { timeout: 30_000 }, async () => {
  const first = await join();
  checkPeer(first);
  const second = await join({ peerMetadata: { storageId: "6a3c3cf0-7b31-4bd4-9a3e-0f5b1c2d3e4f", isEphemeral: false } });
  checkPeer(second);
  const storageId = first.reply.peerMetadata.storageId;
  assert.equal(second.reply.peerMetadata.storageId, storageId, "same storageId on a second connection");

  const exit = await server.restart();
  assert.deepEqual(exit, { code: 0, signal: null }, "SIGTERM exits 0");
  const third = await join();
  checkPeer(third);
  assert.equal(third.reply.peerMetadata.storageId, storageId, "same storageId after a restart on the same data dir");

  console.log(
    `peer reply latency: ${[first, second, third].map(j => `${j.latency.toFixed(1)} ms`).join(", ")}; storageId ${storageId}`,
  );
});

test("`join` without supportedProtocolVersions is taken as version 1", { timeout: 30_000 }, async () => {
  const raw = await new RawClient(server.wsUrl).open();
  const me = randomPeerId("raw");
  raw.send({ type: "join", senderId: me, peerMetadata: { isEphemeral: true } });
  const reply = (await raw.next(2_000)).message;
  assert.equal(reply.type, "peer");
  assert.equal(reply.selectedProtocolVersion, "1");
  assert.equal(reply.targetId, me);
  raw.close();
  await raw.waitClosed();
});

test("`join` offering only an unknown protocol version gets `error`, then a close", { timeout: 30_000 }, async () => {
  const raw = await new RawClient(server.wsUrl).open();
  raw.send({ type: "join", senderId: randomPeerId("raw"), supportedProtocolVersions: ["99"], peerMetadata: {} });
  const reply = (await raw.next(2_000)).message;
  assert.equal(reply.type, "error", `got ${JSON.stringify(reply)}`);
  assert.equal(typeof reply.message, "string");
  await raw.waitClosed();
});

test("a second `join` with the same senderId replaces the first socket", { timeout: 30_000 }, async () => {
  const me = randomPeerId("raw");
  const first = await new RawClient(server.wsUrl).open();
  first.send(joinMessage(me));
  assert.equal((await first.next(2_000)).message.type, "peer");

  const second = await new RawClient(server.wsUrl).open();
  second.send(joinMessage(me));
  const reply = (await second.next(2_000)).message;
  assert.equal(reply.type, "peer");
  assert.equal(reply.targetId, me);
  const close = await first.waitClosed(2_000);
  console.log(`old socket closed with ${close.code} "${close.reason}"`);
  assert.equal(second.isClosed, false, "the new socket stays open");
  second.close();
  await second.waitClosed();
});
