// Sign-in, offline capture, the outbox, durability across a SIGKILL, and who sees
// what: one coaching relationship (dana coaches victoria; sam is victoria's
// supervisor) through the real app in Chromium against the real server.

import assert from "node:assert/strict";
import { before, test } from "node:test";
import { readFromServer } from "../lib/client.mjs";
import {
  collectConsole,
  inviteCode,
  launchBrowser,
  listStatus,
  newContext,
  seedPeople,
  shot,
  signIn,
  startServer,
  tokenOf,
  useCleanup,
  waitFor,
  waitForServiceWorker,
} from "../lib/harness.mjs";

useCleanup();
let server, people, browser, coach, coachPage;
const captured = {};

before(async () => {
  server = await startServer();
  people = await seedPeople(server);
  browser = await launchBrowser();
});

test("an invite link signs the coach in once; the same link is refused afterwards", { timeout: 60_000 }, async () => {
  coach = await newContext(browser);
  const code = await inviteCode(server, "dana");
  coachPage = await coach.newPage();
  collectConsole(coachPage, "dana");
  await coachPage.goto(`${server.url}/#/invite/${code}`);
  await coachPage.getByTestId("user-name").waitFor();
  assert.equal((await coachPage.getByTestId("user-name").textContent()).trim(), "dana");
  assert.ok(await tokenOf(coachPage), "the device token is kept in the browser");
  await shot(coachPage, "01-signed-in-home");

  const other = await newContext(browser);
  const page = await other.newPage();
  await page.goto(`${server.url}/#/invite/${code}`);
  const error = page.getByTestId("invite-error");
  await error.waitFor();
  assert.match(await error.textContent(), /already been used or has expired/);
  assert.equal(await page.evaluate(() => localStorage.getItem("cs:session")), null);
  await shot(page, "01-invite-reused");
  await other.close();
});

test("after one online visit the app opens offline, reloads, and captures a walkthrough", { timeout: 90_000 }, async () => {
  await waitForServiceWorker(coachPage);
  await coach.setOffline(true);
  await coachPage.reload();
  await coachPage.getByTestId("user-name").waitFor();
  assert.match(await coachPage.getByTestId("connection").textContent(), /Offline/);

  await coachPage.goto(`${server.url}/#/new/walkthrough`);
  try {
    await coachPage.getByLabel("hallway").check({ timeout: 10_000 });
  } catch (e) {
    await shot(coachPage, "fail-offline-new-walkthrough");
    console.error(`url ${coachPage.url()}; body: ${(await coachPage.locator("body").innerText()).slice(0, 500)}`);
    throw e;
  }
  await coachPage.getByTestId("template").selectOption("hallway-walkthrough");
  await coachPage.getByTestId("title").fill("Hallway walkthrough after 2nd block");
  await coachPage.getByTestId("start-walkthrough").click();
  await coachPage.getByTestId("note-input").waitFor();
  const id = /#\/doc\/([^/?#]+)/.exec(coachPage.url())[1];
  captured.obs = id;

  const firstYesNo = coachPage.locator(".lookfor button[data-value='yes']").first();
  await firstYesNo.click();
  await coachPage.getByTestId("obs-context").fill("Passing period, ground floor; focus on transitions and adult presence.");
  await coachPage.getByTestId("note-input").fill("Seven students still in the east hallway at the bell.");
  await coachPage.getByTestId("add-note").click();
  await coachPage.getByTestId("note-input").fill("A running student is redirected calmly.");
  await coachPage.getByTestId("add-note").click();
  await coachPage.getByTestId("private-notes").fill("She checked her phone twice; keep the debrief on what we saw.");
  assert.match(await coachPage.getByTestId("private-audience").textContent(), /Only you \(dana\) can read these/);
  captured.notes = await coachPage.locator("[data-private-notes-id]").getAttribute("data-private-notes-id");
  await coachPage.getByTestId("finish").click();
  await waitFor(async () => (await coachPage.locator("[data-status]").first().getAttribute("data-status")) === "saved-on-phone", { label: "saved on this phone" });
  await shot(coachPage, "02-capture-offline");
  // What the phone's screen shows (docs/images/capture-phone.png in the README).
  await coachPage.evaluate(() => window.scrollTo(0, 0));
  await shot(coachPage, "capture-phone", { fullPage: false });
  await coachPage.close();

  // Reopen (still offline): everything typed is there.
  const page = await coach.newPage();
  collectConsole(page, "dana");
  await page.goto(`${server.url}/#/doc/${id}`);
  await page.getByTestId("script").waitFor();
  const script = await page.getByTestId("script").textContent();
  assert.match(script, /Seven students still in the east hallway/);
  assert.match(script, /redirected calmly/);
  assert.equal(await page.getByTestId("obs-context").inputValue(), "Passing period, ground floor; focus on transitions and adult presence.");
  assert.equal(await page.locator(".lookfor button[data-value='yes']").first().getAttribute("aria-pressed"), "true");
  await page.getByTestId("private-notes").waitFor();
  assert.equal(await page.getByTestId("private-notes").inputValue(), "She checked her phone twice; keep the debrief on what we saw.");
  assert.match(await page.getByTestId("obs-status").textContent(), /Shared/);
  assert.equal(await page.locator("[data-status]").first().getAttribute("data-status"), "saved-on-phone");
  await shot(page, "03-capture-reopened-offline");
  await page.close();
});

test("back online with the capture closed, the outbox sends it; the app then shows it safe on server", { timeout: 90_000 }, async () => {
  coachPage = await coach.newPage();
  collectConsole(coachPage, "dana");
  await coachPage.goto(`${server.url}/#/`);
  await coachPage.locator(`li[data-doc-id="${captured.obs}"]`).waitFor();
  assert.equal(await listStatus(coachPage, captured.obs), "saved-on-phone");
  await coach.setOffline(false);

  // The client of the relationship reads it from the server with a plain JS client.
  const doc = await waitFor(
    async () => {
      const d = await readFromServer(server, people.tokens.victoria, captured.obs, 5000).catch(() => undefined);
      return d && d !== "unavailable" && d.script?.length === 2 && d.status === "shared" ? d : undefined;
    },
    { timeout: 45_000, interval: 500, label: "the observation on the server" },
  );
  assert.equal(doc.schema, "observation");
  assert.equal(doc.schemaVersion, 3);
  assert.equal(doc.relationship, people.relationship);
  assert.equal(doc.setting, "hallway");
  assert.deepEqual(doc.template, { id: "hallway-walkthrough", version: 1 });
  assert.equal(doc.observer, "dana");
  await waitFor(async () => (await listStatus(coachPage, captured.obs)) === "safe", { timeout: 30_000, label: "safe on server in the list" });
  await waitFor(async () => /Everything on this phone is safe/.test(await coachPage.getByTestId("outbox-summary").textContent()), { timeout: 30_000, label: "empty outbox" });
  await shot(coachPage, "04-safe-on-server");
});

test("a SIGKILL of the server loses nothing the app showed as safe on server", { timeout: 90_000 }, async () => {
  const safe = await coachPage.$$eval("li[data-doc-id]", lis => lis.filter(li => li.querySelector("[data-status='safe']")).map(li => li.getAttribute("data-doc-id")));
  assert.ok(safe.includes(captured.obs));
  const meta = await coachPage.evaluate(() => JSON.parse(localStorage.getItem("cs:docs")));
  const safeAll = Object.values(meta).filter(m => !m.dirty && m.safeHeads).map(m => m.id);
  assert.ok(safeAll.includes(captured.notes), "the private notes are safe too");
  const token = await tokenOf(coachPage);
  await server.kill();

  // An edit made while the server is down is on the phone, never "safe".
  const edit = await coach.newPage();
  await edit.goto(`${server.url}/#/doc/${captured.obs}`);
  await edit.getByTestId("note-input").fill("Added while the server was down.");
  await edit.getByTestId("add-note").click();
  await edit.getByTestId("script").filter({ hasText: "while the server was down" }).waitFor();
  for (let i = 0; i < 10; i++) {
    assert.notEqual(await edit.locator("[data-status]").first().getAttribute("data-status"), "safe", "safe on a server that is not running");
    await new Promise(r => setTimeout(r, 200));
  }
  await shot(edit, "04b-edit-while-server-down");

  await server.start();
  for (const id of safeAll) {
    const doc = await readFromServer(server, token, id);
    assert.notEqual(doc, "unavailable", `document ${id} shown safe before the kill`);
  }
  const notes = await readFromServer(server, token, captured.notes);
  assert.equal(notes.notes, "She checked her phone twice; keep the debrief on what we saw.");
  await coachPage.getByTestId("connection").filter({ hasText: "Online" }).waitFor({ timeout: 30_000 });
  await waitFor(async () => (await edit.locator("[data-status]").first().getAttribute("data-status")) === "safe", { timeout: 30_000, label: "the edit safe once the server is back" });
  const after = await readFromServer(server, token, captured.obs);
  assert.ok(after.script.some(e => e.text === "Added while the server was down."), "the restarted server has the edit it was shown safe for");
  await waitFor(async () => (await listStatus(coachPage, captured.obs)) === "safe", { label: "safe in the list" });
  await edit.close();
});

test("the principal sees the shared observation but not the private notes; her supervisor sees neither until she shares", { timeout: 120_000 }, async () => {
  const principal = await newContext(browser);
  const page = await signIn(principal, server, "victoria");
  try {
    await page.locator(`li[data-doc-id="${captured.obs}"]`).waitFor({ timeout: 30_000 });
  } catch (e) {
    const metas = await coachPage.evaluate(() => localStorage.getItem("cs:docs"));
    const hers = await page.evaluate(() => localStorage.getItem("cs:docs"));
    console.error(`coach's index: ${metas}\nprincipal's index: ${hers}`);
    throw e;
  }
  assert.equal(await page.locator(`li[data-doc-id="${captured.notes}"]`).count(), 0);
  // Found through the server's list of documents: there is no relationship index.
  for (const p of [page, coachPage]) {
    const kinds = Object.values(await p.evaluate(() => JSON.parse(localStorage.getItem("cs:docs")))).map(m => m.kind);
    assert.equal(kinds.includes("coaching-relationship"), false, `no relationship index on the device: ${kinds}`);
  }
  for (const token of [people.tokens.dana, people.tokens.victoria]) {
    const listed = await (await fetch(`${server.url}/api/docs`, { headers: { Authorization: `Bearer ${token}` } })).json();
    assert.deepEqual(listed.filter(d => d.kind === "coaching-relationship"), [], "no relationship index on the server");
    assert.ok(listed.some(d => d.id === captured.obs && d.access === "write" && d.relationship === people.relationship));
  }
  assert.equal((await fetch(`${server.url}/api/docs`)).status, 401);
  await page.locator(`li[data-doc-id="${captured.obs}"] a`).click();
  await page.getByTestId("script").waitFor({ timeout: 30_000 });
  assert.match(await page.getByTestId("script").textContent(), /east hallway/);
  await page.getByTestId("private-notes-absent").waitFor();
  assert.equal(await page.getByTestId("private-notes").count(), 0);
  assert.equal(await page.content().then(html => html.includes("checked her phone")), false);
  assert.equal(await readFromServer(server, people.tokens.victoria, captured.notes), "unavailable");
  await shot(page, "05-principal-view");

  const supervisor = await newContext(browser);
  const sam = await signIn(supervisor, server, "sam");
  await sam.goto(`${server.url}/#/doc/${captured.obs}`);
  await sam.getByTestId("doc-missing").waitFor({ timeout: 30_000 });
  assert.equal(await readFromServer(server, people.tokens.sam, captured.obs), "unavailable");
  await shot(sam, "06-supervisor-before-share");

  await page.getByTestId("share-user").fill("sam");
  await page.getByTestId("share").click();
  await page.getByTestId("share-result").waitFor();
  assert.match(await page.getByTestId("share-result").textContent(), /Shared with sam/);

  await sam.reload();
  await sam.getByTestId("script").waitFor({ timeout: 30_000 });
  await sam.getByTestId("read-only").waitFor();
  assert.equal(await sam.getByTestId("note-input").isDisabled(), true, "the supervisor reads, never writes");
  assert.match(await sam.getByTestId("script").textContent(), /east hallway/);
  assert.equal(await sam.getByTestId("private-notes").count(), 0);
  assert.equal(await readFromServer(server, people.tokens.sam, captured.notes), "unavailable");
  await shot(sam, "07-supervisor-after-share");
  await principal.close();
  await supervisor.close();
});

test("the coach's private notes follow her to a second device signed in through a new invite link", { timeout: 90_000 }, async () => {
  const second = await newContext(browser);
  const page = await signIn(second, server, "dana");
  await page.locator(`li[data-doc-id="${captured.obs}"] a`).click({ timeout: 30_000 });
  await page.getByTestId("script").waitFor({ timeout: 30_000 });
  await page.getByTestId("private-notes").waitFor({ timeout: 30_000 });
  await waitFor(async () => (await page.getByTestId("private-notes").inputValue()) === "She checked her phone twice; keep the debrief on what we saw.", { timeout: 20_000, label: "the private notes on the second device" });
  assert.equal(await page.locator("[data-private-notes-id]").getAttribute("data-private-notes-id"), captured.notes);
  assert.equal(await page.getByTestId("read-only").count(), 0, "the observer edits her observation on either device");
  // Linked by the notes' own `observation` URL: nothing was carried over from the first device.
  const meta = await page.evaluate(id => JSON.parse(localStorage.getItem("cs:docs"))[id], captured.notes);
  assert.equal(meta.kind, "observation-private-notes");
  assert.equal(meta.observation, captured.obs);
  assert.equal(meta.access, "write");
  assert.equal(meta.own, undefined, "not made on this device");
  // Edits there reach the first device's copy through the server.
  await page.getByTestId("private-notes").fill("She checked her phone twice; keep the debrief on what we saw. Ask about the schedule.");
  const first = await coach.newPage();
  await first.goto(`${server.url}/#/doc/${captured.obs}`);
  await first.getByTestId("private-notes").waitFor({ timeout: 30_000 });
  await waitFor(async () => /Ask about the schedule/.test(await first.getByTestId("private-notes").inputValue()), { timeout: 30_000, label: "the second device's edit on the first" });
  await shot(page, "07b-private-notes-second-device");
  await first.close();
  await second.close();
});

test("a device whose token the server revoked says so and keeps its documents", { timeout: 60_000 }, async () => {
  const context = await newContext(browser);
  const page = await signIn(context, server, "victoria");
  await server.admin(["token", "revoke", "--user", "victoria"]);
  await page.reload();
  await page.getByTestId("token-refused").waitFor({ timeout: 20_000 });
  assert.match(await page.getByTestId("token-refused").textContent(), /no longer accepts/);
  await shot(page, "08-token-refused");
  await context.close();
});
