// Two terminal devices (`coachsync device`, each with its own data dir) and a
// JS automerge-repo client edit one document while the devices are offline,
// then come together in an order unlike the edit order; all three converge on
// the same document, with every edit in it exactly once.
//
// A device talks to the server only during `sync` and `fetch`: between CLI
// runs it is offline, so its edits are concurrent with everyone else's until
// it syncs. The JS client stays connected all along.

import assert from "node:assert/strict";
import { test } from "node:test";
import { isDeepStrictEqual } from "node:util";

import { isImmutableString } from "@automerge/automerge";

import {
  TIMEOUTS,
  makeDeviceDir,
  docJson,
  dumpDiagnostics,
  findDoc,
  makeRepo,
  outcome,
  runDevice,
  shutdownRepo,
  startServer,
  useCleanup,
  waitFor,
  waitServerHas,
  withTimeout,
} from "../lib/helpers.mjs";

useCleanup();

/** A device: its data dir plus the few commands this scenario uses. */
class Device {
  constructor(name, dir, serverUrl) {
    this.name = name;
    this.dir = dir;
    this.serverUrl = serverUrl;
  }

  static async make(name, serverUrl) {
    return new Device(name, await makeDeviceDir(name), serverUrl);
  }

  async ok(args, opts = {}) {
    const r = await runDevice(this.dir, args, opts);
    assert.equal(r.code, 0, `device ${this.name}: \`coachsync device ${args.join(" ")}\` should succeed: ${outcome(r)}`);
    return r;
  }

  async create(value) {
    const r = await this.ok(["create"], { input: JSON.stringify(value) });
    const url = r.stdout.trim();
    assert.match(url, /^automerge:[1-9A-HJ-NP-Za-km-z]+$/, `create prints an automerge URL: ${outcome(r)}`);
    return url;
  }

  set(url, path, value) {
    return this.ok(["set", url, path, JSON.stringify(value)]);
  }

  push(url, path, value) {
    return this.ok(["push", url, path, JSON.stringify(value)]);
  }

  /** `show URL`: the printed text and its parsed value. */
  async show(url) {
    const r = await this.ok(["show", url]);
    return { text: r.stdout, value: JSON.parse(r.stdout) };
  }

  async sync() {
    const r = await this.ok(["sync", "--timeout", "10"], { server: this.serverUrl });
    assert.match(r.stdout, /^1 document(s)? safe on the server$/m, `device ${this.name} sync: ${outcome(r)}`);
    return r;
  }

  fetch(url) {
    return this.ok(["fetch", url, "--timeout", "10"], { server: this.serverUrl });
  }

  /** The status word of `url` in `status` (URL<TAB>status<TAB>last-sync). */
  async statusOf(url) {
    const r = await this.ok(["status"]);
    const lines = r.stdout.split("\n").filter(l => l !== "");
    const mine = lines.map(l => l.split("\t")).filter(f => f[0] === url);
    assert.equal(mine.length, 1, `device ${this.name}: one status line for ${url}:\n${r.stdout}`);
    assert.equal(mine[0].length, 3, `device ${this.name}: status line is URL<TAB>status<TAB>last-sync:\n${r.stdout}`);
    return mine[0][1];
  }
}

/** Every string the JS client sees is automerge text, not a scalar (ImmutableString). */
function assertStringsAreText(value, path = "doc") {
  if (isImmutableString(value)) assert.fail(`${path} is stored as a scalar string, not as text`);
  if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) assertStringsAreText(v, `${path}.${k}`);
  }
}

// ---------------------------------------------------------------------------
// The scenario.

const INITIAL = { cycle: "PDSA 2", plan: "Exit tickets daily", notes: [], counts: {} };
const NEW_PLAN = "Exit tickets daily, reviewed at Friday huddle";
const ALL_NOTES = ["a1", "a2", "b1", "b2", "js1"];
const EXPECTED_COUNTS = { a: 1, b: 2, js: 3 };

/**
 * Sets up A (creates + syncs), B (fetches) and a connected JS client (finds),
 * then runs `steps` in order:
 *   "edit A" / "edit B": offline edits on that device (then its status is pending);
 *   "edit JS": the JS client's edit, waited for until the server has it;
 *   "sync A" / "sync B": that device syncs;
 *   "JS sees A": wait until the JS client has A's edits.
 * Then checks that everyone converged.
 */
async function converge(steps) {
  const server = await startServer();
  const a = await Device.make("A", server.wsUrl);
  const b = await Device.make("B", server.wsUrl);

  const url = await a.create(INITIAL);
  await a.sync();
  assert.equal(await a.statusOf(url), "safe-on-server");
  await b.fetch(url);
  assert.deepEqual((await b.show(url)).value, INITIAL, "B fetched A's document");

  const js = makeRepo(server.wsUrl);
  try {
    const handle = await findDoc(js, url);
    await withTimeout(handle.whenReady(), TIMEOUTS.sync, "handle.whenReady()");
    assert.deepEqual(docJson(handle), INITIAL, "the JS client found A's document");

    const started = performance.now();
    for (const step of steps) {
      switch (step) {
        case "edit A":
          await a.push(url, "notes", "a1");
          await a.push(url, "notes", "a2");
          await a.set(url, "counts.a", 1);
          assert.equal(await a.statusOf(url), "pending", "A has unsynced edits");
          break;
        case "edit B":
          await b.push(url, "notes", "b1");
          await b.push(url, "notes", "b2");
          await b.set(url, "counts.b", 2);
          await b.set(url, "plan", NEW_PLAN);
          assert.equal(await b.statusOf(url), "pending", "B has unsynced edits");
          break;
        case "edit JS":
          handle.change(d => {
            d.notes.push("js1");
            d.counts.js = 3;
          });
          await waitServerHas(js, handle);
          break;
        case "sync A":
          await a.sync();
          break;
        case "sync B":
          await b.sync();
          break;
        case "JS sees A":
          await waitFor(() => docJson(handle).counts.a === 1 && docJson(handle).notes.includes("a2"), {
            timeout: TIMEOUTS.sync,
            label: "the JS client to receive A's edits",
          });
          break;
        default:
          throw new Error(`unknown step ${step}`);
      }
    }

    // The two devices print the same document.
    const shownA = await a.show(url);
    const shownB = await b.show(url);
    assert.equal(shownB.text, shownA.text, "`show` prints the same JSON on A and B");
    const merged = shownA.value;

    // Every edit is there exactly once.
    assert.deepEqual([...merged.notes].sort(), ALL_NOTES, `notes has each of the five items exactly once: ${shownA.text}`);
    assert.ok(merged.notes.indexOf("a1") < merged.notes.indexOf("a2"), `A's notes keep their order: ${shownA.text}`);
    assert.ok(merged.notes.indexOf("b1") < merged.notes.indexOf("b2"), `B's notes keep their order: ${shownA.text}`);
    assert.deepEqual(merged.counts, EXPECTED_COUNTS, "counts has a, b and js");
    assert.equal(merged.plan, NEW_PLAN, "B's new plan");
    assert.equal(merged.cycle, INITIAL.cycle);

    // The JS client, connected all along, ends up with the same document.
    try {
      await waitFor(() => isDeepStrictEqual(docJson(handle), merged), {
        timeout: TIMEOUTS.sync,
        label: "the JS client to hold the devices' merged document",
      });
    } catch (e) {
      e.message += `\nJS client has ${JSON.stringify(docJson(handle))}\ndevices have ${JSON.stringify(merged)}`;
      dumpDiagnostics(js, e.message);
      throw e;
    }
    console.log(`[${steps.join(", ")}] converged ${(performance.now() - started).toFixed(0)} ms after the first edit`);
    assert.deepEqual(docJson(handle), merged, "the JS client's document equals `show` on the devices");
    assertStringsAreText(handle.doc());

    assert.equal(await a.statusOf(url), "safe-on-server", "A: everything safe on the server");
    assert.equal(await b.statusOf(url), "safe-on-server", "B: everything safe on the server");

    // The server itself holds the merged document: a fresh client reads it.
    const fresh = makeRepo(server.wsUrl);
    try {
      const seen = await findDoc(fresh, url);
      assert.deepEqual(docJson(seen), merged, "a fresh JS client reads the merged document from the server");
    } finally {
      await shutdownRepo(fresh);
    }
  } finally {
    await shutdownRepo(js);
  }
}

// ---------------------------------------------------------------------------

test(
  "two devices and a JS client edit one document while disconnected, in different orders, and converge",
  { timeout: 90_000 },
  async () => {
    // Edits in the order A, B, JS; brought together B, A, B, A.
    await converge(["edit A", "edit B", "edit JS", "sync B", "sync A", "sync B", "sync A"]);
  },
);

test("the same edits brought together in another order converge to the same content", { timeout: 90_000 }, async () => {
  // Edits in the order B, A; A syncs first, then the JS client edits (having
  // seen A's edits, still concurrent with B's), then B, then A again.
  await converge(["edit B", "edit A", "sync A", "JS sees A", "edit JS", "sync B", "sync A"]);
});
