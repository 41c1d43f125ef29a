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

test("after a purge the JavaScript client stops receiving the document and carries on with the rest", { timeout: 60_000 }, async () => {
  const coach = repoOf("coach");
  const plan = coach.create({ schema: "work-plan", schemaVersion: 1, relationship, title: "To be purged", theoryOfAction: "" });
  const kept = coach.create({ schema: "work-plan", schemaVersion: 1, relationship, title: "Kept", theoryOfAction: "" });
  await waitServerHas(coach, plan);
  await waitServerHas(coach, kept);
  const principal = repoOf("principal");
  const hers = await findDoc(principal, plan.url);
  const keptHers = await findDoc(principal, kept.url);

  const summary = await runAdmin(server.dataDir, ["doc", "purge", plan.url]);
  assert.match(summary, /^store rewritten/);

  // Edits to the purged document reach nobody; the other document still syncs both ways.
  plan.change(d => { d.title = "Edited after the purge"; });
  keptHers.change(d => { d.theoryOfAction = "If we meet weekly, then…"; });
  await waitFor(() => kept.doc().theoryOfAction === "If we meet weekly, then…", { label: "the kept document syncing" });
  assert.equal(docJson(hers).title, "To be purged");
  const fresh = repoOf("principal");
  await assert.rejects(findDoc(fresh, plan.url, 10_000), /unavailable/);
  for (const repo of [coach, principal, fresh]) await shutdownRepo(repo);
});
