// The figures: gzipped JS+CSS, time to interactive cold and warm on localhost, and
// the time from reconnecting to "safe on server" for 20 observations made offline.
// Printed as `figure: …` lines and written to artifacts/figures.json.

import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { before, test } from "node:test";
import { APP_DIR, ARTIFACTS, inviteCode, launchBrowser, newContext, seedPeople, startServer, useCleanup, waitFor, waitForServiceWorker } from "../lib/harness.mjs";

useCleanup();
let server, browser;
const figures = {};
const report = (key, value, text) => {
  figures[key] = value;
  console.log(`figure: ${text}`);
  writeFileSync(join(ARTIFACTS, "figures.json"), JSON.stringify(figures, null, 2));
};

before(async () => {
  server = await startServer();
  await seedPeople(server);
  browser = await launchBrowser();
});

/** The app's built assets, by name: from the build directory, or (the app built into
 * the server) as the server serves them, found from its page and its scripts. */
async function assets() {
  if (APP_DIR !== "embedded") {
    return readdirSync(join(APP_DIR, "assets")).map(f => [f, readFileSync(join(APP_DIR, "assets", f))]);
  }
  const found = new Map();
  const queue = [...(await (await fetch(`${server.url}/`)).text()).matchAll(/assets\/[\w.-]+/g)].map(m => m[0]);
  while (queue.length) {
    const path = queue.shift();
    if (found.has(path)) continue;
    const bytes = Buffer.from(await (await fetch(`${server.url}/${path}`)).arrayBuffer());
    found.set(path, bytes);
    if (path.endsWith(".js")) queue.push(...[...bytes.toString("utf8").matchAll(/assets\/[\w.-]+/g)].map(m => m[0]));
  }
  return [...found].map(([path, bytes]) => [path.slice("assets/".length), bytes]);
}

test("bundle size: gzipped JS+CSS", async () => {
  let gz = 0;
  let wasm = 0;
  for (const [f, bytes] of await assets()) {
    if (/\.(js|css)$/.test(f)) gz += gzipSync(bytes, { level: 9 }).length;
    if (f.endsWith(".wasm")) wasm += gzipSync(bytes, { level: 9 }).length;
  }
  assert.ok(wasm > 0, "the automerge wasm is among the assets");
  report("gzippedJsCssKiB", +(gz / 1024).toFixed(1), `JS+CSS gzipped ${(gz / 1024).toFixed(1)} KiB (automerge wasm, a separate cached asset: ${(wasm / 1024).toFixed(0)} KiB gzipped)`);
  report("gzippedWasmKiB", +(wasm / 1024).toFixed(1), `automerge wasm gzipped ${(wasm / 1024).toFixed(1)} KiB`);
  assert.ok(gz < 200 * 1024);
});

let context;
test("time to interactive, cold and warm", { timeout: 60_000 }, async () => {
  context = await newContext(browser);
  const page = await context.newPage();
  const code = await inviteCode(server, "dana");
  let t = performance.now();
  await page.goto(`${server.url}/#/invite/${code}`);
  await page.getByRole("heading", { name: "My documents" }).waitFor();
  const cold = performance.now() - t;
  await waitForServiceWorker(page);
  await page.close();

  const warm = [];
  for (let i = 0; i < 3; i++) {
    const p = await context.newPage();
    t = performance.now();
    await p.goto(`${server.url}/#/`);
    await p.getByRole("heading", { name: "My documents" }).waitFor();
    warm.push(performance.now() - t);
    await p.close();
  }
  await context.setOffline(true);
  const p = await context.newPage();
  t = performance.now();
  await p.goto(`${server.url}/#/`);
  await p.getByRole("heading", { name: "My documents" }).waitFor();
  const offline = performance.now() - t;
  await p.close();
  await context.setOffline(false);
  const warmMedian = warm.sort((a, b) => a - b)[1];
  report("ttiColdMs", Math.round(cold), `time to interactive, cold (first visit through an invite link, no cache): ${Math.round(cold)} ms`);
  report("ttiWarmMs", Math.round(warmMedian), `time to interactive, warm (service worker, median of 3): ${Math.round(warmMedian)} ms`);
  report("ttiWarmOfflineMs", Math.round(offline), `time to interactive, warm and offline: ${Math.round(offline)} ms`);
});

test("reconnect to safe on server for 20 observations made offline", { timeout: 240_000 }, async () => {
  const page = await context.newPage();
  await page.goto(`${server.url}/#/`);
  await page.getByRole("heading", { name: "My documents" }).waitFor();
  await context.setOffline(true);
  const ids = [];
  for (let i = 0; i < 20; i++) {
    await page.goto(`${server.url}/#/new/walkthrough`);
    await page.getByTestId("title").fill(`Offline walkthrough ${i + 1}`);
    await page.getByTestId("start-walkthrough").click();
    await page.getByTestId("note-input").waitFor();
    ids.push(/#\/doc\/([^/?#]+)/.exec(page.url())[1]);
    await page.getByTestId("note-input").fill(`Note in walkthrough ${i + 1}`);
    await page.getByTestId("add-note").click();
    await page.getByTestId("script").locator("li").first().waitFor();
  }
  await page.goto(`${server.url}/#/`);
  await waitFor(async () => /\d+ documents? not yet safe/.test(await page.getByTestId("outbox-summary").textContent()), { label: "an outbox" });
  const t = performance.now();
  await context.setOffline(false);
  await waitFor(
    async () => {
      const states = await page.$$eval("li[data-doc-id] [data-status]", els => els.map(e => e.getAttribute("data-status")));
      return states.length >= 20 && states.every(s => s === "safe") && /Everything/.test(await page.getByTestId("outbox-summary").textContent());
    },
    { timeout: 180_000, interval: 100, label: "every observation safe on server" },
  );
  const ms = performance.now() - t;
  report("reconnectToSafe20Ms", Math.round(ms), `reconnect to "safe on server" for 20 offline observations (40 documents with their private notes): ${Math.round(ms)} ms`);
});
