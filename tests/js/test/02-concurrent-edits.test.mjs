// Two JS clients edit one document concurrently through the server and
// converge; the merged document survives a server restart.

import assert from "node:assert/strict";
import { before, test } from "node:test";

import {
  TIMEOUTS,
  assertInterleaved,
  docJson,
  findDoc,
  interleaveEdits,
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

const ROUNDS = 20;

test("two clients editing concurrently converge, and the merge survives a restart", { timeout: 60_000 }, async () => {
  const alice = makeRepo(server.wsUrl);
  const bob = makeRepo(server.wsUrl);

  const handleA = alice.create({ title: "Shared plan", text: "|", counts: {} });
  await waitServerHas(alice, handleA);
  const handleB = await findDoc(bob, handleA.url);
  assert.deepEqual(docJson(handleB), docJson(handleA));

  // Interleaved edits while both are connected, some crossing on the wire.
  await interleaveEdits(handleA, handleB, ROUNDS);

  const started = performance.now();
  await waitFor(() => sameHeads(handleA.heads(), handleB.heads()), {
    timeout: TIMEOUTS.sync,
    label: "both clients to reach the same heads",
  });
  console.log(`converged ${(performance.now() - started).toFixed(0)} ms after the last edit`);

  const merged = docJson(handleA);
  assert.deepEqual(docJson(handleB), merged, "identical documents on both clients");
  assertInterleaved(merged, ROUNDS);
  const heads = handleA.heads();

  // Both clients' changes are on the server before it stops.
  await waitServerHas(alice, handleA);
  await waitServerHas(bob, handleB);
  await shutdownRepo(alice);
  await shutdownRepo(bob);

  const exit = await server.restart();
  assert.deepEqual(exit, { code: 0, signal: null }, "SIGTERM exits 0");

  const carol = makeRepo(server.wsUrl);
  const handleC = await findDoc(carol, handleA.url);
  assert.deepEqual(docJson(handleC), merged, "a fresh client after the restart sees every change");
  assert.ok(sameHeads(handleC.heads(), heads), "same heads after the restart");
  await shutdownRepo(carol);
});
