// A JS client and a Rust peer (the coachsync engine as a client, built as the
// `rust-peer` binary of the tests package) edit one document concurrently through
// the server and converge to the same heads and the same JSON.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { before, test } from "node:test";

import { getHeads } from "@automerge/automerge";
import { splice } from "@automerge/automerge-repo";

import {
  TARGET_DEBUG,
  TIMEOUTS,
  docJson,
  makeRepo,
  sameHeads,
  shutdownRepo,
  sleep,
  startServer,
  useCleanup,
  waitFor,
  waitServerHas,
  withTimeout,
} from "../lib/helpers.mjs";

const RUST_PEER = process.env.COACHSYNC_RUST_PEER || join(TARGET_DEBUG, "rust-peer");
const ROUNDS = 20;

useCleanup();
let server;
before(async () => {
  server = await startServer();
});

/** Start the Rust peer; resolves its stdout lines one by one through `next()`. */
function startRustPeer(args) {
  const child = spawn(RUST_PEER, args, { stdio: ["pipe", "pipe", "inherit"] });
  const lines = [];
  const waiters = [];
  createInterface({ input: child.stdout }).on("line", line => {
    const w = waiters.shift();
    if (w) w(line);
    else lines.push(line);
  });
  const exited = new Promise(resolve => child.on("exit", code => resolve(code)));
  return {
    child,
    exited,
    next: label =>
      withTimeout(
        lines.length ? Promise.resolve(lines.shift()) : new Promise(r => waiters.push(r)),
        TIMEOUTS.sync * 3,
        `the Rust peer to print ${label}`,
      ),
  };
}

test("a JS client and a Rust peer edit one document concurrently and converge", { timeout: 90_000 }, async () => {
  const js = makeRepo(server.wsUrl);
  const handle = js.create({ title: "Work plan", text: "|", counts: {} });
  await waitServerHas(js, handle);

  const rust = startRustPeer(["--url", server.wsUrl, "--doc", handle.url, "--edits", String(ROUNDS), "--prefix", "b"]);
  try {
    assert.equal(await rust.next("ready"), "ready");
    // Both edit at the same time: the Rust peer appends at the end of the text,
    // the JS client inserts at the start.
    for (let i = 0; i < ROUNDS; i++) {
      handle.change(d => {
        d[`a${i}`] = i;
        d.counts[`a${i}`] = i;
        splice(d, ["text"], 0, 0, `<a${i}>`);
      });
      await sleep(Math.floor(Math.random() * 25));
    }
    assert.equal(await rust.next("edited"), "edited");
    await waitServerHas(js, handle);
    rust.child.stdin.write("finish\n");
    const final = JSON.parse(await rust.next("its final document"));

    // Change hashes as hex on both sides (handle.heads() gives the URL encoding).
    await waitFor(() => sameHeads(getHeads(handle.doc()), final.heads), {
      timeout: TIMEOUTS.sync,
      label: "the JS client to reach the Rust peer's heads",
    });
    const doc = docJson(handle);
    assert.deepEqual(doc, final.doc, "the same document on both sides");
    for (let i = 0; i < ROUNDS; i++) {
      assert.equal(doc[`a${i}`], i);
      assert.equal(doc[`b${i}`], i);
      assert.equal(doc.counts[`a${i}`], i);
      assert.equal(doc.counts[`b${i}`], i);
      assert.ok(doc.text.includes(`<a${i}>`) && doc.text.includes(`<b${i}>`), `text holds a${i} and b${i}`);
    }
    assert.equal(await withTimeout(rust.exited, TIMEOUTS.sync, "the Rust peer to exit"), 0);
  } finally {
    rust.child.kill();
    await shutdownRepo(js);
  }
});
