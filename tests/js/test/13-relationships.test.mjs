// Coaching relationships with the JavaScript automerge-repo client: a work plan the
// coach creates for a relationship is read and edited by its client with no grant,
// while the client's supervisor hears what a missing document gets.

import assert from "node:assert/strict";
import { before, test } from "node:test";

import { docJson, findDoc, makeRepo, runAdmin, shutdownRepo, startServer, useCleanup, waitFor, waitServerHas } from "../lib/helpers.mjs";

useCleanup();
let server;
const tokens = {};
let relationship;
before(async () => {
  server = await startServer({ secure: true });
  for (const [name, role] of [["coach", "coach"], ["principal", "client"], ["supervisor", "evaluator"]]) {
    tokens[name] = await runAdmin(server.dataDir, ["user", "add", "--name", name, "--role", role]);
  }
  relationship = await runAdmin(server.dataDir, ["relationship", "add", "--coach", "coach", "--client", "principal", "--school", "north-elementary"]);
});

const repoOf = user => makeRepo(`${server.wsUrl}?token=${encodeURIComponent(tokens[user])}`);

test("a relationship's client reads and edits its work plan with no grant; the supervisor gets unavailable", { timeout: 60_000 }, async () => {
  assert.match(relationship, /^rel-[0-9a-f]+$/);
  const coach = repoOf("coach");
  const plan = coach.create({
    schema: "work-plan",
    schemaVersion: 1,
    relationship,
    title: "Instructional leadership, 2026-27",
    theoryOfAction: "",
  });
  await waitServerHas(coach, plan);

  const principal = repoOf("principal");
  const hers = await findDoc(principal, plan.url);
  assert.equal(docJson(hers).title, "Instructional leadership, 2026-27");
  hers.change(d => {
    d.theoryOfAction = "If I protect teacher collaboration time, then…";
  });
  await waitFor(() => plan.doc().theoryOfAction === "If I protect teacher collaboration time, then…", {
    label: "the client's edit at the coach",
  });

  const supervisor = repoOf("supervisor");
  await assert.rejects(findDoc(supervisor, plan.url, 10_000), /unavailable/);
  for (const repo of [coach, principal, supervisor]) await shutdownRepo(repo);
});
