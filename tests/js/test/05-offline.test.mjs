// Changes made while the server is down, and a document created while it is
// down, reach the server once it is back on the same address: the JS client
// reconnects on its own (every 5 s) and syncs what it has loaded.

import assert from "node:assert/strict";
import { before, test } from "node:test";

import { splice } from "@automerge/automerge-repo";

import {
  MemoryStorageAdapter,
  TIMEOUTS,
  docJson,
  findDoc,
  makeRepo,
  sameHeads,
  shutdownRepo,
  startServer,
  useCleanup,
  waitFor,
  waitServerHas,
} from "../lib/helpers.mjs";

useCleanup();
let server;
before(async () => {
  server = await startServer();
});

test("edits and new documents made while the server is down reach it after it restarts", { timeout: 60_000 }, async () => {
  const alice = makeRepo(server.wsUrl, { storage: new MemoryStorageAdapter() });
  const existing = alice.create({ title: "Before the outage", text: "one" });
  await waitServerHas(alice, existing);
  const port = server.port;

  const exit = await server.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, "SIGTERM exits 0");
  await waitFor(() => alice.peers.length === 0, { label: "the client to notice the server is gone" });

  // Offline work.
  existing.change(d => {
    d.offline = true;
    splice(d, ["text"], d.text.length, 0, " two");
  });
  const created = alice.create({ title: "Created offline", items: ["x", "y"] });
  const expectedExisting = docJson(existing);
  const expectedCreated = docJson(created);

  await server.start();
  assert.equal(server.port, port, "restarted on the same port");
  const started = performance.now();
  await waitServerHas(alice, existing, TIMEOUTS.reconnect);
  await waitServerHas(alice, created, TIMEOUTS.reconnect);
  console.log(`offline work acknowledged ${(performance.now() - started).toFixed(0)} ms after the restart`);

  const bob = makeRepo(server.wsUrl);
  const seenExisting = await findDoc(bob, existing.url);
  const seenCreated = await findDoc(bob, created.url);
  assert.deepEqual(docJson(seenExisting), expectedExisting);
  assert.equal(docJson(seenExisting).text, "one two");
  assert.deepEqual(docJson(seenCreated), expectedCreated);
  assert.ok(sameHeads(seenExisting.heads(), existing.heads()));
  assert.ok(sameHeads(seenCreated.heads(), created.heads()));

  await shutdownRepo(alice);
  await shutdownRepo(bob);
});
