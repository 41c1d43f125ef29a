// Bad input from a raw `ws` client: a frame that is not CBOR gets an `error`
// message and then a close; the server stays healthy for everyone else.

import assert from "node:assert/strict";
import { before, test } from "node:test";

import {
  RawClient,
  docJson,
  encodeFrame,
  findDoc,
  get,
  joinMessage,
  makeRepo,
  randomPeerId,
  shutdownRepo,
  sleep,
  startServer,
  useCleanup,
  waitServerHas,
} from "../lib/helpers.mjs";

useCleanup();
let server;
before(async () => {
  server = await startServer();
});

// 0xff is a "break" byte outside any indefinite-length item: never valid CBOR.
const NOT_CBOR = new Uint8Array([0xff, 0x00, 0x13, 0x37, 0xde, 0xad]);

/** Expects exactly: one `error` frame, then the close. Returns {error, close}. */
async function expectErrorThenClose(raw, sentAt) {
  const frame = await raw.next();
  assert.ok(frame.binary, "the error comes as a binary frame");
  assert.ok(frame.message, `the frame decodes as CBOR (${frame.decodeError?.message})`);
  assert.equal(frame.message.type, "error", `got ${JSON.stringify(frame.message)}`);
  assert.equal(typeof frame.message.message, "string");
  assert.ok(frame.message.message.length > 0, "the error says why");
  const close = await raw.waitClosed();
  assert.equal(raw.frames.length, 0, "nothing after the error but the close");
  console.log(
    `error "${frame.message.message}" after ${(frame.at - sentAt).toFixed(1)} ms; ` +
      `close ${close.code} "${close.reason}" after ${(close.at - sentAt).toFixed(1)} ms`,
  );
  return { error: frame.message, close };
}

async function assertHealthy() {
  const health = await get(`${server.httpUrl}/healthz`);
  assert.equal(health.status, 200);

  const alice = makeRepo(server.wsUrl);
  const bob = makeRepo(server.wsUrl);
  const handle = alice.create({ still: "syncing" });
  await waitServerHas(alice, handle);
  const found = await findDoc(bob, handle.url);
  assert.deepEqual(docJson(found), { still: "syncing" });
  await shutdownRepo(alice);
  await shutdownRepo(bob);
}

test("a non-CBOR binary frame as the first frame gets `error`, then a close", { timeout: 30_000 }, async () => {
  const raw = await new RawClient(server.wsUrl).open();
  const sentAt = performance.now();
  raw.sendRaw(NOT_CBOR);
  await expectErrorThenClose(raw, sentAt);
  await assertHealthy();
});

test("a non-CBOR binary frame after a successful join gets `error`, then a close", { timeout: 30_000 }, async () => {
  const raw = await new RawClient(server.wsUrl).open();
  const me = randomPeerId("raw");
  raw.send(joinMessage(me));
  const peer = (await raw.next()).message;
  assert.equal(peer.type, "peer");
  const sentAt = performance.now();
  raw.sendRaw(NOT_CBOR);
  await expectErrorThenClose(raw, sentAt);
  await assertHealthy();
});

test("a CBOR frame that is not a map gets `error`, then a close", { timeout: 30_000 }, async () => {
  const raw = await new RawClient(server.wsUrl).open();
  const sentAt = performance.now();
  raw.sendRaw(encodeFrame(["join", "not", "a", "map"]));
  await expectErrorThenClose(raw, sentAt);
  await assertHealthy();
});

test("a message of an unknown type is ignored, not a reason to close", { timeout: 30_000 }, async () => {
  const raw = await new RawClient(server.wsUrl).open();
  const me = randomPeerId("raw");
  raw.send(joinMessage(me));
  const peer = (await raw.next()).message;
  assert.equal(peer.type, "peer");
  raw.send({ type: "coachsync-test-unknown", senderId: me, targetId: peer.senderId, extra: 1 });
  await sleep(500);
  assert.equal(raw.isClosed, false, "the socket is still open");
  const errors = raw.frames.filter(f => f.message?.type === "error");
  assert.deepEqual(errors, [], "no error for an unknown type");
  raw.close();
  await raw.waitClosed();
  await assertHealthy();
});
