// Two coachsync servers sharing one PostgreSQL database, as an operator runs
// several nodes: a document created through one node is found through the
// other, clients on both nodes converge live (the nodes tell each other of
// their writes through PostgreSQL), and a node killed right after it
// acknowledged changes has lost none of them, while its clients carry on
// through the other node behind the same load-balanced address.
//
// Needs PostgreSQL's binaries (a private cluster is started in a temporary
// directory); without them the tests skip, unless COACHSYNC_REQUIRE_POSTGRES=1.

import assert from "node:assert/strict";
import { before, test } from "node:test";

import { splice } from "@automerge/automerge-repo";

import {
  TIMEOUTS,
  assertInterleaved,
  docJson,
  dumpDiagnostics,
  findDoc,
  interleaveEdits,
  makeRepo,
  postgresSkipReason,
  sameHeads,
  shutdownRepo,
  sleep,
  startBalancer,
  startPostgres,
  startServer,
  useCleanup,
  waitFor,
  waitForPeer,
  waitServerHas,
  whenServerHas,
  withTimeout,
} from "../lib/helpers.mjs";

useCleanup();

const skip = postgresSkipReason();
if (skip) console.log(`SKIPPED 14-two-nodes: ${skip}`);

let cluster;
let a;
let b;
let balancer;
before(async () => {
  if (skip) return;
  cluster = await startPostgres();
  const args = ["--database-url", cluster.url()];
  // Both nodes start at once on the empty database, as a deployment would.
  [a, b] = await Promise.all([startServer({ args }), startServer({ args })]);
  balancer = await startBalancer([a.port, b.port]);
  console.log(`postgres on port ${cluster.port}; node A on ${a.port}, node B on ${b.port}, balancer on ${balancer.port}`);
});

/** Counts the times `repo` lost its server. */
function countDisconnects(repo) {
  const counter = { n: 0 };
  repo.__adapter.on("peer-disconnected", () => counter.n++);
  return counter;
}

/** `waitFor` that prints the clients' wire logs and the server logs when it times out. */
async function waitOrDump(predicate, opts, repos) {
  try {
    return await waitFor(predicate, opts);
  } catch (e) {
    for (const repo of repos) dumpDiagnostics(repo, e.message);
    throw e;
  }
}

const ROUNDS = 20;

test("a document created through one node is found through the other, and clients on both converge live", { timeout: 60_000, skip }, async () => {
  const alice = makeRepo(a.wsUrl);
  const bob = makeRepo(b.wsUrl);
  const aliceDrops = countDisconnects(alice);
  const bobDrops = countDisconnects(bob);

  const handleA = alice.create({ title: "Shared across nodes", text: "|", counts: {} });
  await waitServerHas(alice, handleA);
  let started = performance.now();
  const handleB = await findDoc(bob, handleA.url);
  console.log(`found through node B ${(performance.now() - started).toFixed(0)} ms after node A acknowledged it`);
  assert.deepEqual(docJson(handleB), docJson(handleA));
  assert.ok(sameHeads(handleB.heads(), handleA.heads()), "same heads through both nodes");

  // Interleaved edits through the two nodes, some crossing on the wire.
  await interleaveEdits(handleA, handleB, ROUNDS);

  started = performance.now();
  await waitOrDump(
    () => sameHeads(handleA.heads(), handleB.heads()),
    { timeout: TIMEOUTS.sync, label: "clients of node A and node B to reach the same heads" },
    [alice, bob],
  );
  console.log(`converged across nodes ${(performance.now() - started).toFixed(0)} ms after the last edit`);
  assert.equal(aliceDrops.n, 0, "alice never lost node A");
  assert.equal(bobDrops.n, 0, "bob never lost node B");

  const merged = docJson(handleA);
  assert.deepEqual(docJson(handleB), merged, "identical documents on both clients");
  assertInterleaved(merged, ROUNDS);

  // Both nodes hold the merge.
  await waitServerHas(alice, handleA);
  await waitServerHas(bob, handleB);
  await shutdownRepo(alice);
  await shutdownRepo(bob);
});

test("SIGKILL of node A right after it acknowledged changes loses none of them, and its clients continue through B", { timeout: 60_000, skip }, async () => {
  balancer.backends = [a.port, b.port];
  const first = balancer.connections.length;
  const carol = makeRepo(balancer.wsUrl, { retryInterval: 500 });
  await waitForPeer(carol);
  assert.equal(balancer.connections[first]?.backend, a.port, "the balancer sent carol to node A");

  const CHANGES = 20;
  const handleC = carol.create({ title: "Made on node A", steps: [], text: "" });
  for (let i = 0; i < CHANGES; i++) {
    handleC.change(d => {
      d.steps.push(`step-${i}`);
      d[`c${i}`] = i;
      splice(d, ["text"], d.text.length, 0, `<c${i}>`);
    });
    if (i % 5 === 4) await sleep(5);
  }
  await whenServerHas(carol, handleC);
  // Node A has acknowledged every change: kill it at once, with carol kept away
  // from the other node until the changes were looked for there.
  balancer.hold();
  const killedAt = performance.now();
  a.proc.kill("SIGKILL");
  const exit = await withTimeout(a.exit, TIMEOUTS.serverStop, "node A to die of SIGKILL");
  assert.equal(exit.signal, "SIGKILL");
  const acked = handleC.heads();
  const ackedJson = docJson(handleC);

  await waitFor(() => carol.peers.length === 0, { label: "carol to notice node A is gone" });

  // A client that never saw the document finds, through node B, every change
  // node A acknowledged: read from the database, since carol cannot reach any
  // node meanwhile.
  const dave = makeRepo(b.wsUrl);
  const handleD = await findDoc(dave, handleC.url);
  await waitOrDump(
    () => sameHeads(handleD.heads(), acked),
    { timeout: TIMEOUTS.sync, label: "dave to have every change node A acknowledged" },
    [dave],
  );
  console.log(`all ${CHANGES} acknowledged changes found through node B ${(performance.now() - killedAt).toFixed(0)} ms after the SIGKILL of node A`);
  assert.deepEqual(docJson(handleD), ackedJson);
  assert.equal(carol.peers.length, 0, "carol stayed disconnected while dave looked");
  assert.equal(balancer.connections.length, first + 1, "no connection went through the held balancer");

  // Carol reconnects through the balancer, which now sends everyone to node B.
  balancer.backends = [b.port];
  const releasedAt = performance.now();
  await balancer.release();
  await waitForPeer(carol, TIMEOUTS.reconnect);
  console.log(`carol reconnected ${(performance.now() - releasedAt).toFixed(0)} ms after the balancer took connections again`);
  assert.equal(balancer.connections.at(-1)?.backend, b.port, "carol came back through node B");

  for (let i = CHANGES; i < CHANGES + 10; i++) {
    handleC.change(d => {
      d.steps.push(`step-${i}`);
      d[`c${i}`] = i;
      splice(d, ["text"], d.text.length, 0, `<c${i}>`);
    });
  }
  handleD.change(d => {
    d.dave = "was here";
  });
  const editedAt = performance.now();
  await waitOrDump(
    () => sameHeads(handleC.heads(), handleD.heads()) && docJson(handleD).c29 === 29 && docJson(handleC).dave === "was here",
    { timeout: TIMEOUTS.sync, label: "carol (back through the balancer) and dave to converge" },
    [carol, dave],
  );
  console.log(`carol and dave converged ${(performance.now() - editedAt).toFixed(0)} ms after their edits`);

  const final = docJson(handleD);
  assert.deepEqual(docJson(handleC), final);
  assert.deepEqual(
    final.steps,
    Array.from({ length: CHANGES + 10 }, (_, i) => `step-${i}`),
  );
  for (let i = 0; i < CHANGES + 10; i++) assert.equal(final[`c${i}`], i);
  assert.equal(final.text, Array.from({ length: CHANGES + 10 }, (_, i) => `<c${i}>`).join(""));
  assert.equal(final.dave, "was here");

  await waitServerHas(carol, handleC);
  await waitServerHas(dave, handleD);
  await shutdownRepo(carol);
  await shutdownRepo(dave);
});
