// A server run as for real (tokens required) with the JavaScript automerge-repo
// client: browsers cannot set headers on a WebSocket, so the token travels as
// `?token=`. A document belongs to its creator; a grant made with the terminal
// device lets another user's JS client find it, and a revoke stops it.

import assert from "node:assert/strict";
import { before, test } from "node:test";

import WebSocket from "ws";

import {
  docJson,
  findDoc,
  makeDeviceDir,
  makeRepo,
  outcome,
  runAdmin,
  runDevice,
  shutdownRepo,
  startServer,
  useCleanup,
  waitFor,
  waitServerHas,
} from "../lib/helpers.mjs";

useCleanup();
let server;
const tokens = {};
before(async () => {
  server = await startServer({ secure: true });
  for (const [name, role] of [["coach", "coach"], ["principal", "client"], ["other", "coach"]]) {
    tokens[name] = await runAdmin(server.dataDir, ["user", "add", "--name", name, "--role", role]);
  }
});

const withToken = user => `${server.wsUrl}?token=${encodeURIComponent(tokens[user])}`;

/** The HTTP status of a WebSocket upgrade to `url`: 101 when it is accepted. */
function upgradeStatus(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on("open", () => {
      ws.close();
      resolve(101);
    });
    ws.on("unexpected-response", (_req, res) => {
      resolve(res.statusCode);
      ws.terminate();
    });
    ws.on("error", e => {
      if (!/Unexpected server response/.test(e.message)) reject(e);
    });
  });
}

test("the upgrade needs a valid token, from ?token= as a browser sends it", { timeout: 30_000 }, async () => {
  assert.equal(await upgradeStatus(server.wsUrl), 401, "no token");
  assert.equal(await upgradeStatus(`${server.wsUrl}?token=cs_wrong`), 401, "a wrong token");
  assert.equal(await upgradeStatus(withToken("coach")), 101);
});

test("a document created with ?token= is its creator's until shared, and a revoke stops the sharing", { timeout: 60_000 }, async () => {
  const coach = makeRepo(withToken("coach"));
  const handle = coach.create({ schema: "note", text: "visited grade 3 math" });
  await waitServerHas(coach, handle);

  // Another coach's client hears what it would hear of a missing document.
  const other = makeRepo(withToken("other"));
  await assert.rejects(findDoc(other, handle.url, 10_000), /unavailable/);
  await shutdownRepo(other);

  // The owner shares it from the terminal device with the same token.
  const dir = await makeDeviceDir("coach");
  const grant = await runDevice(dir, ["grant", handle.url, "--user", "principal", "--access", "read", "--token", tokens.coach], { server: server.wsUrl });
  assert.equal(grant.code, 0, outcome(grant));
  assert.match(grant.stdout, /user principal may read/);
  const principal = makeRepo(withToken("principal"));
  const found = await findDoc(principal, handle.url);
  assert.deepEqual(docJson(found), { schema: "note", text: "visited grade 3 math" });

  // A reader's own edit stays in its client (automerge's read-only sync), and the
  // owner's edits keep reaching it.
  found.change(d => {
    d.byReader = "not allowed";
  });
  handle.change(d => {
    d.minutes = 25;
  });
  await waitFor(() => found.doc().minutes === 25, { label: "the owner's edit at the reader" });
  await new Promise(r => setTimeout(r, 500));
  assert.equal(handle.doc().byReader, undefined, "the reader's edit reached the owner");

  // Someone who does not own it cannot share it; a bad access word is named.
  const refused = await runDevice(dir, ["grant", handle.url, "--user", "other", "--access", "read", "--token", tokens.principal], { server: server.wsUrl });
  assert.equal(refused.code, 1, outcome(refused));
  assert.match(refused.stderr, /^coachsync: /);
  const bad = await runDevice(dir, ["grant", handle.url, "--user", "other", "--access", "everything", "--token", tokens.coach], { server: server.wsUrl });
  assert.equal(bad.code, 1, outcome(bad));
  assert.match(bad.stderr, /read.*write/);

  const revoke = await runDevice(dir, ["revoke", handle.url, "--user", "principal", "--token", tokens.coach], { server: server.wsUrl });
  assert.equal(revoke.code, 0, outcome(revoke));
  handle.change(d => {
    d.text = "visited grade 3 math; follow up on exit tickets";
  });
  await waitServerHas(coach, handle);
  await new Promise(r => setTimeout(r, 1000));
  assert.equal(found.doc().text, "visited grade 3 math", "no update after the revoke");
  assert.equal(handle.doc().byReader, undefined);
  await shutdownRepo(principal);
  await shutdownRepo(coach);
});
