// The coaching domain (docs/DOMAIN.md) across the language boundary: an
// observation made on a terminal device (`coachsync device create --kind
// observation`) is read and edited by a real JS automerge-repo client the way the
// documentation says, and the device keeps treating it as a valid observation.
//
// DOMAIN.md, "Text, plain values and IDs": fields of type text are Automerge
// text (a JS client reads a plain string); string, enumeration and URL fields are
// plain values (a JS client reads an `ImmutableString` and writes one with
// `new ImmutableString(…)`).

import assert from "node:assert/strict";
import { test } from "node:test";
import { isDeepStrictEqual } from "node:util";

import { ImmutableString, isImmutableString, splice } from "@automerge/automerge";

import {
  TIMEOUTS,
  docJson,
  dumpDiagnostics,
  findDoc,
  makeDeviceDir,
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

/** Runs the CLI and asserts it exits 0; returns the result. */
async function ok(dataDir, args, opts) {
  const r = await runDevice(dataDir, args, opts);
  assert.equal(r.code, 0, `\`coachsync device ${args.join(" ")}\` should succeed: ${outcome(r)}`);
  return r;
}

/** Runs the CLI and asserts it fails cleanly: exit ≠ 0, a `coachsync:` message on stderr, nothing on stdout. */
async function refused(dataDir, args, opts) {
  const what = `\`coachsync device ${args.join(" ")}\``;
  const r = await runDevice(dataDir, args, opts);
  assert.notEqual(r.code, 0, `${what} should fail: ${outcome(r)}`);
  assert.equal(r.signal, null, `${what} exits, not killed: ${outcome(r)}`);
  assert.match(r.stderr, /^coachsync: /m, `${what}: the message is on stderr: ${outcome(r)}`);
  assert.equal(r.stdout, "", `${what}: nothing on stdout: ${outcome(r)}`);
  return r;
}

/** `template KIND`, parsed. */
async function template(kind) {
  const dir = await makeDeviceDir("template");
  return JSON.parse((await ok(dir, ["template", kind])).stdout);
}

/** `create --kind KIND` with `value` as JSON on stdin; returns the printed URL. */
async function create(dataDir, kind, value) {
  const r = await ok(dataDir, ["create", "--kind", kind], { input: JSON.stringify(value) });
  const url = r.stdout.trim();
  assert.match(url, /^automerge:[1-9A-HJ-NP-Za-km-z]+$/, `create prints an automerge URL: ${outcome(r)}`);
  return url;
}

/** `show URL`: the printed text and its parsed value. */
async function show(dataDir, url) {
  const r = await ok(dataDir, ["show", url]);
  return { text: r.stdout, value: JSON.parse(r.stdout) };
}

/** `sync`: exits 0 and says the one document is safe on the server. */
async function sync(dataDir, serverUrl) {
  const r = await ok(dataDir, ["sync", "--timeout", "10"], { server: serverUrl });
  assert.match(r.stdout, /^1 document safe on the server$/m, outcome(r));
  return r;
}

/** A device with a fresh observation made from `value`, synced to a fresh server, found by a JS client. */
async function observationEverywhere(value) {
  const server = await startServer();
  const device = await makeDeviceDir("domain");
  const url = await create(device, "observation", value);
  await sync(device, server.wsUrl);
  const js = makeRepo(server.wsUrl);
  const handle = await findDoc(js, url);
  await withTimeout(handle.whenReady(), TIMEOUTS.sync, "handle.whenReady()");
  return { server, device, url, js, handle };
}

// ---------------------------------------------------------------------------
// The observation's field types, from DOMAIN.md's reference table.

/** The documented type of every leaf of an observation, by generic path (`[]` a list item, `*` a map key). */
const OBSERVATION_LEAVES = {
  schema: "plain", // the literal "observation"
  schemaVersion: "number",
  title: "text",
  observer: "plain", // string
  setting: "plain", // enumeration
  observedAt: "number", // timestamp (ms)
  endedAt: "number", // timestamp (ms)
  school: "plain", // string
  "observed.role": "plain", // string
  "observed.grade": "plain", // string
  "observed.subject": "plain", // string
  "observed.name": "plain", // string
  "observed.consent.given": "boolean",
  "observed.consent.at": "number", // timestamp (ms)
  context: "text",
  "template.id": "plain", // string
  "template.version": "number",
  "lookFors.*.response": "plain", // string
  "lookFors.*.note": "text",
  "script[].id": "plain", // string
  "script[].at": "number", // timestamp (ms)
  "script[].text": "text",
  "script[].tags[]": "plain", // list of string
  nextStep: "text",
  status: "plain", // enumeration
};
/** The documented containers: lists are JS arrays, maps and objects plain objects. */
const OBSERVATION_CONTAINERS = {
  observed: "object",
  "observed.consent": "object",
  template: "object",
  lookFors: "map",
  "lookFors.*": "object",
  script: "list",
  "script[]": "object",
  "script[].tags": "list",
};

const join = (generic, key) => (generic === "" ? key : `${generic}.${key}`);

/**
 * Walks the JS client's view `doc` alongside the JSON `expected` (the template),
 * asserting each value has its documented representation; returns the generic
 * paths it checked (so the caller can see that every documented field was met).
 */
function assertDocumentedTypes(doc, expected, { generic = "", path = "doc", seen = new Set() } = {}) {
  if (Array.isArray(expected)) {
    assert.equal(OBSERVATION_CONTAINERS[generic], "list", `${path}: the template has a list where DOMAIN.md documents none`);
    assert.ok(Array.isArray(doc), `${path} is a list (got ${describe(doc)})`);
    assert.equal(doc.length, expected.length, `${path} has the template's ${expected.length} items`);
    seen.add(generic);
    expected.forEach((item, i) => assertDocumentedTypes(doc[i], item, { generic: `${generic}[]`, path: `${path}[${i}]`, seen }));
    return seen;
  }
  if (expected !== null && typeof expected === "object") {
    const container = OBSERVATION_CONTAINERS[generic];
    if (generic !== "") assert.ok(container === "object" || container === "map", `${path}: the template has an object where DOMAIN.md documents none`);
    assert.ok(doc !== null && typeof doc === "object" && !Array.isArray(doc) && !isImmutableString(doc), `${path} is an object (got ${describe(doc)})`);
    assert.deepEqual(Object.keys(doc).sort(), Object.keys(expected).sort(), `${path} has exactly the template's fields`);
    seen.add(generic);
    for (const key of Object.keys(expected)) {
      const childGeneric = container === "map" ? join(generic, "*") : join(generic, key);
      assertDocumentedTypes(doc[key], expected[key], { generic: childGeneric, path: `${path}.${key}`, seen });
    }
    return seen;
  }
  const kind = OBSERVATION_LEAVES[generic];
  assert.ok(kind, `${path} (${generic}): the template has a field DOMAIN.md's reference does not document`);
  seen.add(generic);
  switch (kind) {
    case "text":
      assert.equal(typeof doc, "string", `${path} is text, so a JS client reads a plain string (got ${describe(doc)})`);
      assert.equal(doc, expected, `${path} holds the template's value`);
      break;
    case "plain":
      assert.ok(isImmutableString(doc), `${path} is a plain value, so a JS client reads an ImmutableString (got ${describe(doc)})`);
      assert.equal(doc.toString(), expected, `${path} holds the template's value`);
      break;
    case "boolean":
      assert.equal(typeof doc, "boolean", `${path} is a boolean (got ${describe(doc)})`);
      assert.equal(doc, expected, `${path} holds the template's value`);
      break;
    case "number":
      assert.equal(typeof doc, "number", `${path} is a number (got ${describe(doc)})`);
      assert.equal(doc, expected, `${path} holds the template's value`);
      break;
    default:
      throw new Error(`unknown kind ${kind}`);
  }
  return seen;
}

function describe(v) {
  if (isImmutableString(v)) return `ImmutableString ${JSON.stringify(v.toString())}`;
  if (Array.isArray(v)) return `list ${JSON.stringify(v)}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Waits until the JS client's document passes `predicate`; on timeout prints it and the diagnostics. */
async function jsWaitFor(js, handle, predicate, label) {
  try {
    await waitFor(() => predicate(docJson(handle)), { timeout: TIMEOUTS.sync, label });
  } catch (e) {
    e.message += `\nthe JS client has ${JSON.stringify(docJson(handle))}`;
    dumpDiagnostics(js, e.message);
    throw e;
  }
}

// ---------------------------------------------------------------------------

test("a JS client reads an observation created with the CLI and sees the documented fields", { timeout: 60_000 }, async () => {
  const example = await template("observation");
  assert.equal(example.schema, "observation", "the template is an observation");
  assert.equal(example.schemaVersion, 3, "the template is of the current version, 3");

  const { device, url, js, handle } = await observationEverywhere(example);
  try {
    // The device lists it as an observation with its title.
    const listed = (await ok(device, ["list", "--kind", "observation"])).stdout;
    assert.ok(listed.split("\n").includes(`${url}\tobservation\t${example.title}`), `list --kind observation shows it:\n${listed}`);

    const doc = handle.doc();
    assert.equal(String(doc.schema), "observation", "schema");
    assert.equal(doc.schemaVersion, 3, "schemaVersion");

    // Each field the example has, with its documented representation and the example's value.
    const seen = assertDocumentedTypes(doc, example);
    const documented = [...Object.keys(OBSERVATION_LEAVES), ...Object.keys(OBSERVATION_CONTAINERS)];
    assert.deepEqual(
      documented.filter(p => !seen.has(p)),
      [],
      "the template exercises every documented observation field (so each type above was checked)",
    );

    // Spelled out, the fields the brief names.
    for (const s of ["title", "context", "nextStep"]) assert.equal(typeof doc[s], "string", `${s} is text`);
    for (const s of ["setting", "status", "school"]) assert.ok(isImmutableString(doc[s]), `${s} is a plain value`);
    assert.equal(doc.setting.toString(), "hallway");
    assert.equal(doc.status.toString(), "shared");
    assert.ok(isImmutableString(doc.template.id) && doc.template.id.toString() === example.template.id, "template.id");
    assert.equal(doc.template.version, example.template.version, "template.version");
    for (const entry of doc.script) {
      assert.ok(isImmutableString(entry.id), `script[].id ${describe(entry.id)} is a plain value`);
      assert.equal(typeof entry.text, "string", "script[].text is text");
      assert.equal(typeof entry.at, "number", "script[].at is a number");
      assert.ok(Array.isArray(entry.tags), "script[].tags is a list");
    }
    for (const [id, lf] of Object.entries(doc.lookFors)) {
      assert.equal(typeof lf.note, "string", `lookFors.${id}.note is text`);
      assert.ok(isImmutableString(lf.response), `lookFors.${id}.response is a plain value`);
    }

    // And as JSON (ImmutableString converted to string) it is exactly the template.
    assert.deepEqual(docJson(handle), example, "the JS client reads the template's JSON");
    assert.deepEqual((await show(device, url)).value, example, "the device shows the template's JSON");
  } finally {
    await shutdownRepo(js);
  }
});

test("an observation edited by the JS client the documented way stays valid for the device", { timeout: 90_000 }, async () => {
  // A draft, so that the JS client's `status: "shared"` is a change.
  const example = { ...(await template("observation")), status: "draft" };
  const { server, device, url, js, handle } = await observationEverywhere(example);
  try {
    assert.equal(docJson(handle).status, "draft");

    // The JS client appends a script entry and shares the observation, as DOMAIN.md says:
    // text as a string, plain values as ImmutableString.
    const at = Date.now();
    const jsEntry = { id: "js-1", at, text: "Students asked each other for evidence", tags: ["lf-greeting"] };
    handle.change(d => {
      d.script.push({
        id: new ImmutableString(jsEntry.id),
        at: jsEntry.at,
        text: jsEntry.text,
        tags: jsEntry.tags.map(t => new ImmutableString(t)),
      });
      d.status = new ImmutableString("shared");
    });
    await waitServerHas(js, handle);

    // The device gets it on its next sync.
    await sync(device, server.wsUrl);
    const afterJs = (await show(device, url)).value;
    assert.deepEqual(afterJs.script.at(-1), jsEntry, "the device shows the JS client's script entry, last");
    assert.equal(afterJs.script.length, example.script.length + 1, "one entry more");
    assert.equal(afterJs.status, "shared", "the device shows the JS client's status");
    assert.deepEqual(afterJs, { ...example, status: "shared", script: [...example.script, jsEntry] }, "nothing else changed");

    // The device edits it further: `set` checks the whole document, the JS edits included.
    const nextStep = "Debrief on Friday: start from the students' questions.";
    await ok(device, ["set", url, "nextStep", JSON.stringify(nextStep)]);
    const deviceEntry = { id: "dev-1", at: at + 1000, text: "Two students used sentence stems.", tags: ["lf-tone"] };
    await ok(device, ["push", url, "script", JSON.stringify(deviceEntry)]);
    const edited = (await show(device, url)).value;
    assert.deepEqual(edited, { ...afterJs, nextStep, script: [...afterJs.script, deviceEntry] }, "the device's set and push");

    // Invalid edits are refused, naming the field, and change nothing.
    const invalid = [
      { args: ["set", url, "status", JSON.stringify("bogus")], names: [/\bstatus\b/, /bogus/] },
      { args: ["push", url, "script", JSON.stringify({ id: "dev-2", at: "yesterday", text: "x" })], names: [/script\.\d+\.at/] },
      { args: ["push", url, "script", JSON.stringify({ id: "dev-3", at: at })], names: [/script\.\d+\.text/] },
      { args: ["set", url, "setting", JSON.stringify("gym")], names: [/\bsetting\b/] },
    ];
    const before = (await show(device, url)).text;
    for (const { args, names } of invalid) {
      const r = await refused(device, args);
      for (const re of names) assert.match(r.stderr, re, `the message names the problem: ${outcome(r)}`);
      assert.equal((await show(device, url)).text, before, `\`${args.join(" ")}\` changed the document`);
    }

    // Back on the JS client: the device's edits, with the documented types kept.
    await sync(device, server.wsUrl);
    await jsWaitFor(js, handle, d => isDeepStrictEqual(d, edited), "the JS client to receive the device's edits");
    const doc = handle.doc();
    assert.equal(typeof doc.nextStep, "string", `nextStep set by the device is still text (got ${describe(doc.nextStep)})`);
    assert.ok(isImmutableString(doc.status), `status is still a plain value (got ${describe(doc.status)})`);
    const [js1, dev1] = doc.script.slice(-2);
    assert.ok(isImmutableString(js1.id) && isImmutableString(js1.tags[0]), "the JS entry keeps its plain values");
    assert.ok(isImmutableString(dev1.id) && isImmutableString(dev1.tags[0]), "the device's entry has plain values");
    assert.equal(typeof dev1.text, "string", "the device's entry text is text");
  } finally {
    await shutdownRepo(js);
  }
});

test("concurrent edits to one text field from JS and a device merge", { timeout: 60_000 }, async () => {
  const example = await template("observation");
  const { server, device, url, js, handle } = await observationEverywhere(example);
  try {
    const original = example.nextStep;
    const deviceSentence = " The coach sends the tardy data on Wednesday.";
    const jsPrefix = "Agreed with Principal Garcia: ";

    // The device, offline (it talks to the server only during `sync`), appends a sentence.
    await ok(device, ["set", url, "nextStep", JSON.stringify(original + deviceSentence)]);
    // Meanwhile the JS client inserts at the start of the same text, and the server gets it.
    handle.change(d => splice(d, ["nextStep"], 0, 0, jsPrefix));
    assert.equal(handle.doc().nextStep, jsPrefix + original);
    await waitServerHas(js, handle);

    // The device syncs: both hold both edits.
    const merged = jsPrefix + original + deviceSentence;
    await sync(device, server.wsUrl);
    const shown = (await show(device, url)).value;
    assert.equal(shown.nextStep, merged, "the device holds both edits of nextStep");
    assert.deepEqual(shown, { ...example, nextStep: merged }, "and nothing else changed");
    await jsWaitFor(js, handle, d => d.nextStep !== jsPrefix + original, "the JS client to receive the device's edit");
    assert.equal(handle.doc().nextStep, merged, "the JS client holds both edits of nextStep");
    assert.equal(typeof handle.doc().nextStep, "string", "nextStep is still text");
    assert.deepEqual(docJson(handle), shown, "the JS client and the device hold the same document");
  } finally {
    await shutdownRepo(js);
  }
});
