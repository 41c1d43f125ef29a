// The work plan edited by coach and principal at once: live edits, presence, and
// concurrent offline reorders that converge to one order with nothing lost or doubled;
// read and write grants shown as the server's list of documents says.

import assert from "node:assert/strict";
import { before, test } from "node:test";
import { readFromServer } from "../lib/client.mjs";
import { launchBrowser, newContext, seedPeople, shot, signIn, sleep, startServer, useCleanup, waitFor } from "../lib/harness.mjs";

useCleanup();
let server, people, browser, coach, principal, dana, victoria, planId;

before(async () => {
  server = await startServer();
  people = await seedPeople(server);
  browser = await launchBrowser();
  coach = await newContext(browser);
  principal = await newContext(browser);
  dana = await signIn(coach, server, "dana");
  victoria = await signIn(principal, server, "victoria");
});

const titles = page => page.$$eval("[data-activity]", lis => lis.map(li => ({ id: li.getAttribute("data-activity"), title: li.querySelector("input").value })));

async function addActivity(page, title) {
  const before = await page.locator("[data-activity]").count();
  await page.getByTestId("new-activity").fill(title);
  await page.getByTestId("add-activity").click();
  await waitFor(async () => (await page.locator("[data-activity]").count()) === before + 1, { label: `activity ${title}` });
}

test("coach and principal edit the plan live and see who else is in it", { timeout: 90_000 }, async () => {
  await dana.goto(`${server.url}/#/new/work-plan`);
  await dana.getByRole("button", { name: "Create" }).click();
  await dana.getByTestId("theory").waitFor();
  planId = /#\/doc\/([^/?#]+)/.exec(dana.url())[1];
  await dana.getByTestId("theory").fill("If we protect observation time, then teachers get feedback they act on.");
  for (const t of ["Weekly observation schedule", "Feedback tracker", "Instructional expectations"]) await addActivity(dana, t);

  await victoria.goto(`${server.url}/#/`);
  await victoria.locator(`li[data-doc-id="${planId}"] a`).click({ timeout: 30_000 });
  await victoria.getByTestId("theory").waitFor({ timeout: 30_000 });
  await waitFor(async () => (await titles(victoria)).length === 3, { timeout: 20_000, label: "three activities at the principal" });
  assert.equal(await victoria.getByTestId("theory").inputValue(), "If we protect observation time, then teachers get feedback they act on.");

  await waitFor(async () => /Also here: victoria/.test(await dana.getByTestId("presence").textContent()), { timeout: 20_000, label: "presence at the coach" });
  await waitFor(async () => /Also here: dana/.test(await victoria.getByTestId("presence").textContent()), { timeout: 20_000, label: "presence at the principal" });

  await victoria.getByTestId("new-goal").fill("Every teacher gets focused feedback twice a month.");
  await victoria.getByRole("button", { name: "Add goal" }).click();
  await waitFor(async () => (await dana.locator(".goal textarea").count()) === 1, { timeout: 20_000, label: "the principal's goal at the coach" });
  await shot(dana, "08-workplan-live");

  const doc = await readFromServer(server, people.tokens.victoria, planId);
  assert.equal(doc.schema, "work-plan");
  assert.equal(doc.schemaVersion, 2);
  assert.equal(doc.relationship, people.relationship);
  assert.equal(doc.client, "victoria");
  assert.equal(doc.coach, "dana");
  for (const a of Object.values(doc.activities)) {
    assert.equal(typeof a.rank, "number");
    assert.equal(a.status, "planned");
  }
});

test("both reorder and edit activities offline; after reconnecting they have one list, nothing lost or doubled", { timeout: 120_000 }, async () => {
  await waitFor(async () => (await titles(victoria)).length === 3 && (await titles(dana)).length === 3, { label: "three activities on both" });
  const start = await titles(dana);
  await coach.setOffline(true);
  await principal.setOffline(true);
  await dana.getByTestId("connection").filter({ hasText: "Offline" }).waitFor();
  await victoria.getByTestId("connection").filter({ hasText: "Offline" }).waitFor();

  // Coach: the third activity up one; reword the first.
  await dana.locator(`[data-activity="${start[2].id}"] [data-move="up"]`).click();
  await dana.locator(`[data-activity="${start[0].id}"] input`).fill("Weekly observation schedule, Tuesdays and Thursdays");
  // Principal: the first activity down one; add one; reword the second.
  await victoria.locator(`[data-activity="${start[0].id}"] [data-move="down"]`).click();
  await addActivity(victoria, "Professional learning for three teacher groups");
  await victoria.locator(`[data-activity="${start[1].id}"] input`).fill("Feedback tracker, reviewed monthly");
  await shot(dana, "09-workplan-offline-coach");
  await shot(victoria, "09-workplan-offline-principal");

  await coach.setOffline(false);
  await principal.setOffline(false);
  const same = await waitFor(
    async () => {
      const [a, b] = [await titles(dana), await titles(victoria)];
      return a.length === 4 && JSON.stringify(a) === JSON.stringify(b) ? a : undefined;
    },
    { timeout: 45_000, interval: 200, label: "the same four activities on both devices" },
  );
  assert.equal(new Set(same.map(a => a.id)).size, 4, "no activity doubled");
  const byId = Object.fromEntries(same.map(a => [a.id, a.title]));
  assert.equal(byId[start[0].id], "Weekly observation schedule, Tuesdays and Thursdays");
  assert.equal(byId[start[1].id], "Feedback tracker, reviewed monthly");
  assert.equal(byId[start[2].id], "Instructional expectations");
  assert.ok(same.some(a => a.title === "Professional learning for three teacher groups"));
  // Each device moved one activity: the coach's move and the principal's both hold.
  const order = same.map(a => a.id);
  assert.ok(order.indexOf(start[2].id) < order.indexOf(start[1].id), "the coach's move up holds");
  assert.ok(order.indexOf(start[0].id) > order.indexOf(start[1].id), "the principal's move down holds");
  await waitFor(async () => (await dana.locator("[data-status]").first().getAttribute("data-status")) === "safe", { timeout: 30_000, label: "safe at the coach" });
  await shot(dana, "10-workplan-merged");
});

/** Grants `user` access to a document, as its owner (`token`) does through the HTTP API. */
async function grantAccess(token, docId, user, access) {
  const response = await fetch(`${server.url}/api/docs/${docId}/grants`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ user, access }),
  });
  assert.equal(response.status < 300, true, `grant ${access} to ${user}: HTTP ${response.status} ${await response.text()}`);
}

test("the server's list decides what is editable: a plan in no relationship shared to read is read-only, shared to write is editable", { timeout: 120_000 }, async () => {
  await dana.goto(`${server.url}/#/new/work-plan`);
  await dana.getByLabel("Title", { exact: true }).fill("Dana's own planning");
  await dana.getByTestId("relationship").selectOption({ label: "None: only me" });
  await dana.getByRole("button", { name: "Create" }).click();
  await dana.getByTestId("theory").waitFor();
  const ownId = /#\/doc\/([^/?#]+)/.exec(dana.url())[1];
  await dana.getByTestId("theory").fill("Planning the term's visits.");
  assert.equal(await dana.getByTestId("read-only").count(), 0, "the owner edits her own plan");
  await waitFor(async () => (await dana.locator("[data-status]").first().getAttribute("data-status")) === "safe", { timeout: 30_000, label: "the plan safe on the server" });

  // The owner's own entry in the list: write.
  const mine = await (await fetch(`${server.url}/api/docs`, { headers: { Authorization: `Bearer ${people.tokens.dana}` } })).json();
  assert.equal(mine.find(d => d.id === ownId)?.access, "write");
  assert.equal(mine.find(d => d.id === ownId)?.relationship, null);
  assert.equal(mine.find(d => d.id === ownId)?.owner, "dana");

  await grantAccess(people.tokens.dana, ownId, "victoria", "read");
  await victoria.goto(`${server.url}/#/`);
  await victoria.locator(`li[data-doc-id="${ownId}"] a`).click({ timeout: 30_000 });
  await victoria.getByTestId("theory").waitFor({ timeout: 30_000 });
  await victoria.getByTestId("read-only").waitFor();
  assert.equal(await victoria.getByTestId("theory").isDisabled(), true, "a read grant is read-only, relationship or not");
  assert.equal(await victoria.getByTestId("new-activity").isDisabled(), true);
  await waitFor(async () => (await victoria.getByTestId("theory").inputValue()) === "Planning the term's visits.", { label: "the plan's text at the reader" });
  await shot(victoria, "11-read-only-grant");

  // A write grant to a user in no relationship of this document: editable.
  await server.admin(["user", "add", "--name", "eli", "--role", "coach"]);
  const colleague = await newContext(browser);
  const eli = await signIn(colleague, server, "eli");
  await grantAccess(people.tokens.dana, ownId, "eli", "write");
  await eli.goto(`${server.url}/#/account`);
  await eli.goto(`${server.url}/#/`);
  await eli.locator(`li[data-doc-id="${ownId}"] a`).click({ timeout: 30_000 });
  await eli.getByTestId("theory").waitFor({ timeout: 30_000 });
  await sleep(300);
  assert.equal(await eli.getByTestId("read-only").count(), 0, "a write grant is editable");
  await eli.getByTestId("theory").fill("Planning the term's visits, with eli.");
  await waitFor(async () => (await readFromServer(server, people.tokens.dana, ownId).catch(() => undefined))?.theoryOfAction === "Planning the term's visits, with eli.", {
    timeout: 30_000,
    interval: 500,
    label: "the writer's edit on the server",
  });
  await colleague.close();

  // The coaching plan, shared by its client with her supervisor: read-only there.
  const supervisor = await newContext(browser);
  const sam = await signIn(supervisor, server, "sam");
  await grantAccess(people.tokens.victoria, planId, "sam", "read");
  await sam.goto(`${server.url}/#/doc/${planId}`);
  await sam.getByTestId("read-only").waitFor({ timeout: 30_000 });
  assert.equal(await sam.getByTestId("theory").isDisabled(), true, "the coaching plan shared to read is read-only");
  await supervisor.close();
});
