// Two JS clients edit one document concurrently through the server and
// converge; the merged document survives a server restart.

import assert from "node:assert/strict";
import { before, test } from "node:test";

import { splice } from "@automerge/automerge-repo";

import {
  TIMEOUTS,
  docJson,
  findDoc,
  makeRepo,
  sameHeads,
  shutdownRepo,
  sleep,
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

  // Interleaved edits while both are connected: each side writes its own keys
  // and inserts into the one shared text, at both ends, with short random
  // pauses so that some changes cross on the wire.
  for (let i = 0; i < ROUNDS; i++) {
    handleA.change(d => {
      d[`a${i}`] = i;
      d.counts[`a${i}`] = `alice-${i}`;
      splice(d, ["text"], 0, 0, `<a${i}>`);
    });
    handleB.change(d => {
      d[`b${i}`] = i;
      d.counts[`b${i}`] = `bob-${i}`;
      splice(d, ["text"], d.text.length, 0, `<b${i}>`);
    });
    await sleep(Math.floor(Math.random() * 25));
  }

  const started = performance.now();
  await waitFor(() => sameHeads(handleA.heads(), handleB.heads()), {
    timeout: TIMEOUTS.sync,
    label: "both clients to reach the same heads",
  });
  console.log(`converged ${(performance.now() - started).toFixed(0)} ms after the last edit`);

  const merged = docJson(handleA);
  assert.deepEqual(docJson(handleB), merged, "identical documents on both clients");
  for (let i = 0; i < ROUNDS; i++) {
    assert.equal(merged[`a${i}`], i);
    assert.equal(merged[`b${i}`], i);
    assert.equal(merged.counts[`a${i}`], `alice-${i}`);
    assert.equal(merged.counts[`b${i}`], `bob-${i}`);
    assert.ok(merged.text.includes(`<a${i}>`), `text has <a${i}>`);
    assert.ok(merged.text.includes(`<b${i}>`), `text has <b${i}>`);
  }
  assert.equal(merged.text.length, 1 + ROUNDS * ("<a0>".length + "<b0>".length) + 2 * (ROUNDS - 10));
  assert.ok(merged.text.includes("|"), "text keeps its original character");
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
