// A document made by one JS client is found, with the same content, by a
// second JS client (fresh repo, no storage) through the server.

import assert from "node:assert/strict";
import { before, test } from "node:test";

import { isValidAutomergeUrl } from "@automerge/automerge-repo";

import { docJson, findDoc, makeRepo, sameHeads, shutdownRepo, startServer, useCleanup, waitServerHas } from "../lib/helpers.mjs";

useCleanup();
let server;
before(async () => {
  server = await startServer();
});

test("a second client finds a document created by the first, with the same content", { timeout: 30_000 }, async () => {
  const alice = makeRepo(server.wsUrl);
  const content = {
    title: "Tuesday practice",
    notes: "Warm-up: 10 min jog.\nDrills: passing in triangles, 3 × 5 min.",
    emoji: "⚽ ünïcödé ✓",
    minutes: 90,
    ratio: 0.75,
    done: false,
    nothing: null,
    players: ["Ana", "Ben", "Chidi"],
    venue: { name: "North field", pitch: 2 },
  };
  const handle = alice.create(content);
  assert.ok(isValidAutomergeUrl(handle.url));
  handle.change(d => {
    d.players.push("Dana");
    d.venue.lights = true;
  });
  const expected = docJson(handle);
  assert.equal(expected.players.length, 4);

  // Wait until the server has acknowledged the document's heads, so the
  // second client's request cannot overtake the first client's sync.
  await waitServerHas(alice, handle);

  const bob = makeRepo(server.wsUrl);
  const started = performance.now();
  const found = await findDoc(bob, handle.url);
  const elapsed = performance.now() - started;
  console.log(`find() through the server took ${elapsed.toFixed(0)} ms`);

  assert.equal(found.url, handle.url);
  assert.deepEqual(docJson(found), expected);
  assert.ok(sameHeads(found.heads(), handle.heads()), "same heads on both clients");

  await shutdownRepo(alice);
  await shutdownRepo(bob);
});
