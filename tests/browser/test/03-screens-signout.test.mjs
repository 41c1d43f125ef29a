// Every main screen passes axe-core with no serious or critical violation, works at
// 360 px, and sign-out warns about unsynced changes, then leaves nothing behind.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { before, test } from "node:test";
import { readFromServer } from "../lib/client.mjs";
import { launchBrowser, tokenOf, validateDocument, newContext, seedPeople, shot, signIn, startServer, useCleanup, waitFor, waitForServiceWorker } from "../lib/harness.mjs";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

useCleanup();
let server, browser, context, page;

before(async () => {
  server = await startServer();
  await seedPeople(server);
  browser = await launchBrowser();
  context = await newContext(browser);
  page = await signIn(context, server, "dana");
});

async function audit(name) {
  await page.waitForTimeout(300);
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter(v => v.impact === "serious" || v.impact === "critical");
  await shot(page, `axe-${name}`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${name}: the page is ${overflow}px wider than a 360px phone`);
  assert.deepEqual(
    bad.map(v => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target.join(" ")).join(", ")}`),
    [],
    `${name}: serious or critical accessibility violations`,
  );
  return result.violations.length;
}

async function create(kind) {
  await page.goto(`${server.url}/#/new/${kind}`);
  await page.getByRole("button", { name: "Create" }).click();
  await page.waitForURL(/#\/doc\//);
}

test("axe-core finds no serious or critical violation on the main screens", { timeout: 180_000 }, async () => {
  await page.goto(`${server.url}/#/`);
  await audit("home");
  await page.goto(`${server.url}/#/new/walkthrough`);
  await audit("new-walkthrough");
  await page.getByTestId("start-walkthrough").click();
  await page.getByTestId("observed-role").fill("teacher");
  await page.getByLabel("Grade").fill("3");
  await page.getByTestId("note-input").fill("Students at the door greeted by name.");
  await page.getByTestId("add-note").click();
  await page.locator(".lookfor button[data-value='yes']").first().click();
  await audit("capture");

  await create("work-plan");
  await page.getByTestId("new-activity").fill("Weekly observation schedule");
  await page.getByTestId("add-activity").click();
  await page.getByTestId("new-activity").fill("Feedback tracker");
  await page.getByTestId("add-activity").click();
  await page.locator("[data-activity]").nth(1).waitFor();
  await audit("work-plan");

  await create("rubric-self-assessment");
  await page.getByTestId("current").selectOption("pre-initiation");
  await page.getByTestId("add-rating").click();
  await page.getByTestId("current").selectOption("developing");
  await page.getByTestId("add-rating").click();
  await page.locator(".chart svg circle").nth(1).waitFor();
  await audit("self-assessment");

  await create("coaching-log");
  await page.getByTestId("session-summary").fill("Debriefed the hallway walkthrough.");
  await page.getByTestId("add-session").click();
  await page.getByTestId("sessions").locator("li").first().waitFor();
  await audit("coaching-log");

  await create("pdsa-cycle");
  for (const v of [48, 52, 50, 57, 55, 61]) {
    await page.getByTestId("measure-value").fill(String(v));
    await page.getByTestId("add-measurement").click();
  }
  await page.locator(".chart svg circle").nth(5).waitFor();
  await audit("pdsa");

  await page.goto(`${server.url}/#/account`);
  await audit("account");

  // Every document the app wrote is valid as docs/DOMAIN.md defines it.
  const token = await tokenOf(page);
  const metas = Object.values(await page.evaluate(() => JSON.parse(localStorage.getItem("cs:docs"))));
  const kinds = new Set();
  for (const meta of metas) {
    const doc = await waitFor(async () => {
      const d = await readFromServer(server, token, meta.id).catch(() => undefined);
      return d && d !== "unavailable" ? d : undefined;
    }, { timeout: 30_000, interval: 500, label: `${meta.kind} ${meta.id} on the server` });
    assert.equal(await validateDocument(doc), "valid", `${meta.kind}: ${JSON.stringify(doc)}`);
    kinds.add(doc.schema);
  }
  assert.deepEqual([...kinds].sort(), ["coaching-log", "observation", "observation-private-notes", "pdsa-cycle", "rubric-self-assessment", "work-plan"]);

  // The keyboard alone reaches "New walkthrough" and starts one, from the heading
  // that takes the focus when a screen opens.
  await page.goto(`${server.url}/#/`);
  await page.waitForFunction(() => document.activeElement?.id === "page-title");
  let reached = false;
  for (let i = 0; i < 12 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = (await page.evaluate(() => document.activeElement?.textContent?.trim())) === "New walkthrough";
  }
  assert.ok(reached, "Tab reaches the New walkthrough link");
  await page.keyboard.press("Enter");
  await page.waitForURL(/#\/new\/walkthrough/, { timeout: 10_000 }).catch(async e => {
    await shot(page, "fail-keyboard-new");
    console.error(`url ${page.url()}; active ${await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 200))}; body ${(await page.locator("main").innerText()).slice(0, 300)}`);
    throw e;
  });
  // The app moves focus to the new page's heading; then the keyboard goes on from there.
  await page.waitForFunction(() => document.activeElement?.id === "page-title");
  await page.getByTestId("start-walkthrough").focus();
  await page.keyboard.press("Enter");
  await page.waitForURL(/#\/doc\//, { timeout: 10_000 }).catch(async e => {
    await shot(page, "fail-keyboard-start");
    console.error(`url ${page.url()}; active ${await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 200))}; body ${(await page.locator("main").innerText()).slice(0, 300)}`);
    throw e;
  });
});

test("sign-out warns about changes not yet on the server, then deletes every local copy", { timeout: 90_000 }, async () => {
  await waitForServiceWorker(page);
  await page.goto(`${server.url}/#/`);
  await waitFor(async () => /Everything on this phone is safe/.test(await page.getByTestId("outbox-summary").textContent()), { timeout: 30_000, label: "everything synced" }).catch(async e => {
    console.error(`url ${page.url()}; body ${(await page.locator("main").innerText()).slice(0, 300)}`);
    console.error(await page.evaluate(() => {
      const d = window.coachsync.device;
      return JSON.stringify({ listeners: d._debugListeners?.(), connected: d.connected, dirty: Object.values(JSON.parse(localStorage.getItem("cs:docs"))).filter(m => m.dirty), heads: d.outbox().map(id => [id, d.repo.handles[id]?.heads(), d.repo.handles[id]?.state]) });
    }));
    await page.goto(`${server.url}/#/account`);
    await page.goto(`${server.url}/#/`);
    console.error(`after a route change: ${await page.getByTestId("outbox-summary").textContent()}`);
    throw e;
  });
  assert.ok((await page.evaluate(() => caches.keys())).length > 0, "the app shell is cached");
  const cdp = await context.newCDPSession(page);
  const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
  // Playwright's contexts are incognito, where nothing installs; anything else counts.
  assert.deepEqual(installabilityErrors.filter(e => e.errorId !== "in-incognito"), [], "Chromium finds the app installable");
  const manifest = await (await page.request.get(`${server.url}/manifest.webmanifest`)).json();
  assert.equal(manifest.display, "standalone");

  await context.setOffline(true);
  await page.goto(`${server.url}/#/new/walkthrough`);
  await page.getByTestId("start-walkthrough").click();
  await page.getByTestId("note-input").fill("Written offline, never synced.");
  await page.getByTestId("add-note").click();
  await page.goto(`${server.url}/#/account`);
  await page.getByTestId("sign-out").click();
  const warning = page.getByTestId("signout-warning");
  await warning.waitFor();
  assert.match(await warning.textContent(), /only on this phone/);
  await audit("sign-out-warning");
  await page.getByTestId("sign-out-anyway").click();
  await page.getByText("You are signed out").waitFor({ timeout: 20_000 });
  const left = await page.evaluate(async () => ({
    databases: (await indexedDB.databases()).map(d => d.name),
    caches: await caches.keys(),
    localStorage: localStorage.length,
  }));
  assert.deepEqual(left, { databases: [], caches: [], localStorage: 0 });
  await audit("signed-out");
  await context.setOffline(false);
});
