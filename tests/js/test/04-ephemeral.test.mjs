// Ephemeral messages (handle.broadcast) are relayed between JS clients that
// have the same document open, keeping the author's senderId.

import assert from "node:assert/strict";
import { before, test } from "node:test";

import { TIMEOUTS, findDoc, makeRepo, shutdownRepo, startServer, useCleanup, waitServerHas, withTimeout } from "../lib/helpers.mjs";

useCleanup();
let server;
before(async () => {
  server = await startServer();
});

function nextEphemeral(handle) {
  return withTimeout(
    new Promise(resolve => handle.once("ephemeral-message", resolve)),
    TIMEOUTS.frame,
    `an ephemeral message on ${handle.url}`,
  );
}

test("broadcast() on one client arrives as 'ephemeral-message' on the other, both ways", { timeout: 30_000 }, async () => {
  const alice = makeRepo(server.wsUrl);
  const bob = makeRepo(server.wsUrl);
  const handleA = alice.create({ title: "presence" });
  await waitServerHas(alice, handleA);
  const handleB = await findDoc(bob, handleA.url);
  // Bob's find() has told the server that he syncs this document.
  await waitServerHas(bob, handleB);

  const payload = {
    kind: "cursor",
    user: "alice",
    position: 42,
    selection: [3, 7],
    note: "héllo ✓",
    bytes: new Uint8Array([0, 1, 2, 250]),
  };
  let received = nextEphemeral(handleB);
  let started = performance.now();
  handleA.broadcast(payload);
  let event = await received;
  console.log(`alice -> bob in ${(performance.now() - started).toFixed(1)} ms`);
  assert.equal(event.senderId, alice.peerId, "senderId is the author's peer ID");
  assert.equal(event.handle, handleB);
  assert.deepEqual(event.message, payload);

  const reply = { kind: "cursor", user: "bob", position: 7 };
  received = nextEphemeral(handleA);
  started = performance.now();
  handleB.broadcast(reply);
  event = await received;
  console.log(`bob -> alice in ${(performance.now() - started).toFixed(1)} ms`);
  assert.equal(event.senderId, bob.peerId);
  assert.deepEqual(event.message, reply);

  // Several in a row all arrive, in order (each has its own count).
  const got = [];
  const all = withTimeout(
    new Promise(resolve =>
      handleB.on("ephemeral-message", e => {
        got.push(e.message.seq);
        if (got.length === 5) resolve();
      }),
    ),
    TIMEOUTS.frame,
    "five ephemeral messages",
  );
  for (let seq = 0; seq < 5; seq++) handleA.broadcast({ seq });
  await all;
  assert.deepEqual(got, [0, 1, 2, 3, 4]);

  await shutdownRepo(alice);
  await shutdownRepo(bob);
});
