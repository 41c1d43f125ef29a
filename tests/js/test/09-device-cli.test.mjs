// The terminal device (`coachsync device …`), driven as a user would drive it:
// real processes, each with its own data dir, syncing over loopback with a real
// server, and a real JS automerge-repo client on the other side.

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";

import { isImmutableString } from "@automerge/automerge";
import { splice } from "@automerge/automerge-repo";

import {
  TIMEOUTS,
  makeDeviceDir,
  docJson,
  findDoc,
  makeRepo,
  outcome,
  runDevice,
  shutdownRepo,
  startServer,
  useCleanup,
  waitFor,
  waitServerHas,
} from "../lib/helpers.mjs";

useCleanup();

/** Runs the CLI and asserts it exits 0; returns the result. */
async function ok(dataDir, args, opts) {
  const r = await runDevice(dataDir, args, opts);
  assert.equal(r.code, 0, `\`coachsync device ${args.join(" ")}\` should succeed: ${outcome(r)}`);
  return r;
}

/** `create` with `value` as JSON on stdin; returns the printed URL. */
async function create(dataDir, value) {
  const r = await ok(dataDir, ["create"], { input: JSON.stringify(value) });
  const url = r.stdout.trim();
  assert.match(url, /^automerge:[1-9A-HJ-NP-Za-km-z]+$/, `create prints an automerge URL: ${outcome(r)}`);
  return url;
}

/** `show URL`, parsed. */
async function show(dataDir, url) {
  const r = await ok(dataDir, ["show", url]);
  return JSON.parse(r.stdout);
}

const RFC3339_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** `status`, as {lines, docs: Map(url -> {status, lastSync})}; checks the line format. */
async function status(dataDir) {
  const r = await ok(dataDir, ["status"]);
  const lines = r.stdout.split("\n").filter(l => l !== "");
  const docs = new Map();
  for (const line of lines) {
    const fields = line.split("\t");
    assert.equal(fields.length, 3, `a status line is URL<TAB>status<TAB>last-sync: ${JSON.stringify(line)}`);
    const [url, state, lastSync] = fields;
    assert.match(url, /^automerge:/, `status line ${JSON.stringify(line)}`);
    assert.ok(["local-only", "pending", "safe-on-server"].includes(state), `status line ${JSON.stringify(line)}`);
    assert.ok(lastSync === "never" || RFC3339_UTC.test(lastSync), `last-sync is RFC 3339 UTC or "never": ${JSON.stringify(line)}`);
    assert.ok(!docs.has(url), `one line per document: ${r.stdout}`);
    docs.set(url, { status: state, lastSync });
  }
  return { text: r.stdout, lines, docs };
}

/** Asserts `url`'s status line, and returns its last-sync time. */
async function expectStatus(dataDir, url, expected) {
  const s = await status(dataDir);
  const entry = s.docs.get(url);
  assert.ok(entry, `status lists ${url}:\n${s.text}`);
  assert.equal(entry.status, expected, `status of ${url}:\n${s.text}`);
  return entry.lastSync;
}

/** Asserts a last-sync value is a real time between `notBefore` and now (second resolution allowed). */
function assertSyncedAt(lastSync, notBefore) {
  assert.match(lastSync, RFC3339_UTC, "a synced document has a last-sync time");
  const at = Date.parse(lastSync);
  assert.ok(at >= Math.floor(notBefore / 1000) * 1000, `last sync ${lastSync} is not before ${new Date(notBefore).toISOString()}`);
  assert.ok(at <= Date.now() + 1000, `last sync ${lastSync} is not in the future`);
}

/** `sync`: exits 0 and says how many documents are safe on the server. */
async function sync(dataDir, serverUrl, expectedCount) {
  const r = await ok(dataDir, ["sync", "--timeout", "10"], { server: serverUrl });
  assert.match(r.stdout, new RegExp(`^${expectedCount} documents? safe on the server$`, "m"), outcome(r));
  return r;
}

/**
 * Every string in the JS client's view of the document is a plain JS string,
 * i.e. stored as automerge text (a scalar string reads as an ImmutableString).
 */
function assertStringsAreText(value, path = "doc") {
  if (isImmutableString(value)) assert.fail(`${path} is stored as a scalar string, not as text`);
  if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) assertStringsAreText(v, `${path}.${k}`);
  }
}

/** A loopback port with nothing listening on it (bound, then released). */
async function closedPort() {
  const srv = createServer();
  await new Promise((resolve, reject) => srv.listen(0, "127.0.0.1", resolve).once("error", reject));
  const { port } = srv.address();
  await new Promise(resolve => srv.close(resolve));
  return port;
}

const WALKTHROUGH = { title: "Hallway walkthrough", lookFors: { engagement: 2 }, notes: ["students on task"] };

// ---------------------------------------------------------------------------

test("the CLI end to end", { timeout: 90_000 }, async () => {
  const device = await makeDeviceDir();
  const testStart = Date.now();

  // Offline: no server exists yet.
  const url = await create(device, WALKTHROUGH);
  assert.deepEqual(await show(device, url), WALKTHROUGH, "show prints what create stored");
  assert.equal(await expectStatus(device, url, "local-only"), "never", "never synced");

  // Only now is there a server.
  const server = await startServer();
  await sync(device, server.wsUrl, 1);
  const firstSync = await expectStatus(device, url, "safe-on-server");
  assertSyncedAt(firstSync, testStart);

  // A JS client reads exactly what the device created.
  const js = makeRepo(server.wsUrl);
  try {
    const handle = await findDoc(js, url);
    assert.deepEqual(docJson(handle), WALKTHROUGH, "the JS client reads the device's document");
    assertStringsAreText(handle.doc());

    // The JS client edits it (splice only works on text: the title must be text).
    handle.change(d => {
      d.notes.push("two students off task near the lockers");
      d.lookFors.engagement = 3;
      splice(d, ["title"], d.title.length, 0, " (week 2)");
    });
    const jsEdited = docJson(handle);
    assert.deepEqual(jsEdited, {
      title: "Hallway walkthrough (week 2)",
      lookFors: { engagement: 3 },
      notes: ["students on task", "two students off task near the lockers"],
    });
    await waitServerHas(js, handle);

    // The device gets the JS edit on its next sync.
    await sync(device, server.wsUrl, 1);
    assert.deepEqual(await show(device, url), jsEdited, "show includes the JS client's edit");
    const secondSync = await expectStatus(device, url, "safe-on-server");
    assertSyncedAt(secondSync, Date.parse(firstSync));

    // And the other way: an offline edit on the device is pending until synced,
    // then reaches the JS client through the server.
    await ok(device, ["set", url, "lookFors.engagement", "4"]);
    await ok(device, ["push", url, "notes", JSON.stringify("followed up with the teacher")]);
    await ok(device, ["set", url, "lookFors.questioning", JSON.stringify("mostly recall")]);
    const deviceEdited = await show(device, url);
    assert.deepEqual(deviceEdited, {
      title: "Hallway walkthrough (week 2)",
      lookFors: { engagement: 4, questioning: "mostly recall" },
      notes: ["students on task", "two students off task near the lockers", "followed up with the teacher"],
    });
    assert.equal(await expectStatus(device, url, "pending"), secondSync, "an offline edit keeps the last sync time");

    await sync(device, server.wsUrl, 1);
    assertSyncedAt(await expectStatus(device, url, "safe-on-server"), Date.parse(secondSync));
    await waitFor(() => docJson(handle).lookFors.questioning !== undefined && docJson(handle).notes.length === 3, {
      timeout: TIMEOUTS.sync,
      label: "the JS client to receive the device's edit",
    });
    assert.deepEqual(docJson(handle), deviceEdited, "the JS client sees the device's edit");
    assertStringsAreText(handle.doc());
  } finally {
    await shutdownRepo(js);
  }
});

test("bad input changes nothing", { timeout: 60_000 }, async () => {
  const device = await makeDeviceDir();
  const server = await startServer();
  const url = await create(device, WALKTHROUGH);
  await sync(device, server.wsUrl, 1);

  // A valid document ID that this device has never seen: made on another device.
  const otherDevice = await makeDeviceDir();
  const unknownUrl = await create(otherDevice, { title: "Someone else's walkthrough" });
  const unknownId = unknownUrl.slice("automerge:".length);

  const showBefore = (await ok(device, ["show", url])).stdout;
  const statusBefore = (await status(device)).text;
  assert.match(statusBefore, /\tsafe-on-server\t/);

  const cases = [
    { args: ["set", url, "notes.99", "1"], problem: [/notes\.99/, /past the end/] },
    { args: ["set", url, "title", "{bad"], problem: [/not valid JSON/] },
    { args: ["set", unknownUrl, "a", "1"], problem: [/no document/, new RegExp(unknownId)] },
    { args: ["push", url, "title", JSON.stringify("x")], problem: [/title/, /not a list/] },
    { args: ["create"], input: "[1,2]", problem: [/JSON object/] },
    { args: ["create"], input: "{bad", problem: [/not valid JSON/] },
  ];
  for (const { args, input, problem } of cases) {
    const what = `\`coachsync device ${args.join(" ")}\`${input === undefined ? "" : ` with stdin ${input}`}`;
    const r = await runDevice(device, args, { input });
    assert.notEqual(r.code, 0, `${what} should fail: ${outcome(r)}`);
    assert.equal(r.signal, null, `${what} exits, not killed: ${outcome(r)}`);
    assert.match(r.stderr, /^coachsync: /m, `${what}: the message is on stderr: ${outcome(r)}`);
    for (const re of problem) assert.match(r.stderr, re, `${what}: the message names the problem: ${outcome(r)}`);
    assert.equal(r.stdout, "", `${what}: nothing on stdout: ${outcome(r)}`);

    assert.equal((await ok(device, ["show", url])).stdout, showBefore, `${what} changed the document`);
    assert.equal((await status(device)).text, statusBefore, `${what} changed the status lines`);
  }
  // The unknown document did not appear on this device, and the other device still has it.
  assert.ok(!(await status(device)).docs.has(unknownUrl));
  assert.deepEqual(await show(otherDevice, unknownUrl), { title: "Someone else's walkthrough" });
});

test("sync fails clearly when the server is unreachable", { timeout: 60_000 }, async () => {
  const device = await makeDeviceDir();
  const url = await create(device, WALKTHROUGH);
  const port = await closedPort();

  const r = await runDevice(device, ["sync", "--timeout", "2"], { server: `ws://127.0.0.1:${port}/sync` });
  assert.notEqual(r.code, 0, `sync with no server should fail: ${outcome(r)}`);
  assert.equal(r.signal, null, `sync exits on its own: ${outcome(r)}`);
  assert.ok(r.ms < 10_000, `sync gives up within ~10 s: ${outcome(r)}`);
  assert.match(r.stderr, /^coachsync: /m, outcome(r));
  assert.match(r.stderr, /cannot reach the server/, outcome(r));
  console.log(`unreachable sync gave up after ${r.ms.toFixed(0)} ms: ${r.stderr.trim()}`);

  assert.equal(await expectStatus(device, url, "local-only"), "never", "still not safe after a failed sync");

  // A document with unsynced edits stays pending when the server goes away.
  const server = await startServer();
  await sync(device, server.wsUrl, 1);
  const synced = await expectStatus(device, url, "safe-on-server");
  await ok(device, ["set", url, "lookFors.engagement", "1"]);
  const stoppedUrl = server.wsUrl;
  await server.stop();
  const r2 = await runDevice(device, ["sync", "--timeout", "2"], { server: stoppedUrl });
  assert.notEqual(r2.code, 0, `sync to a stopped server should fail: ${outcome(r2)}`);
  assert.ok(r2.ms < 10_000, `sync gives up within ~10 s: ${outcome(r2)}`);
  assert.match(r2.stderr, /cannot reach the server/, outcome(r2));
  assert.equal(await expectStatus(device, url, "pending"), synced, "still pending, last sync unchanged");
  assert.equal((await show(device, url)).lookFors.engagement, 1, "the offline edit is kept");
});
