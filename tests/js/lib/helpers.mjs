// Shared helpers for the interop tests: run the real coachsync server binary,
// make real automerge-repo 2.x JavaScript clients, and speak the wire protocol
// by hand with a raw `ws` client.
//
// Every wait here is bounded; every resource made here is released by
// `cleanup()` (registered by `useCleanup()` as an `after()` hook), so that each
// test file's process exits on its own.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { get as httpGet } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after } from "node:test";

import * as Automerge from "@automerge/automerge";
import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { Encoder, decode as cborDecode } from "cbor-x";
import WebSocket from "ws";

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, "..", "..", "..");

/** Cargo's debug output directory, as cargo itself finds it. */
export const TARGET_DEBUG = join(process.env.CARGO_TARGET_DIR ? resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR) : join(REPO_ROOT, "target"), "debug");

/** The server binary under test. */
export const SERVER_BIN = process.env.COACHSYNC_BIN || join(TARGET_DEBUG, "coachsync");

/** Bounds used throughout (milliseconds). */
export const TIMEOUTS = {
  serverStart: 15_000,
  serverStop: 15_000,
  sync: 10_000,
  frame: 5_000,
  // The JS client retries a lost connection every 5 s; allow two attempts plus sync.
  reconnect: 15_000,
};

// ---------------------------------------------------------------------------
// Small async utilities.

export const sleep = ms => new Promise(r => setTimeout(r, ms));

/** Races `promise` against a timer; the timer is always cleared. */
export async function withTimeout(promise, ms, label) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `predicate` (sync or async) until it is truthy; returns its value. */
export async function waitFor(predicate, { timeout = TIMEOUTS.sync, interval = 20, label = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeout} ms waiting for ${label}`);
    await sleep(interval);
  }
}

const stripAnsi = s => s.replace(/\x1b\[[0-9;]*m/g, "");

// ---------------------------------------------------------------------------
// The server process.

export class ServerProcess {
  /** @param {{dataDir: string, listen?: string, args?: string[]}} opts */
  /**
   * `secure`: every connection needs a token; otherwise anonymous peers are taken
   * (`--allow-anonymous`), as the tests of syncing itself need.
   */
  constructor({ dataDir, listen = "127.0.0.1:0", args = [], secure = false }) {
    this.dataDir = dataDir;
    this.listen = listen;
    this.args = secure ? args : ["--allow-anonymous", ...args];
    this.proc = undefined;
    this.port = undefined;
    this.logs = [];
    this.exit = undefined; // Promise<{code, signal}>
  }

  get httpUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/sync`;
  }

  get running() {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Starts the binary and resolves once it logs the port it listens on. */
  async start() {
    if (!existsSync(SERVER_BIN)) {
      throw new Error(`server binary not found at ${SERVER_BIN} (run \`cargo build -p coachsync-server\` or set COACHSYNC_BIN)`);
    }
    const proc = spawn(SERVER_BIN, ["serve", "--listen", this.listen, "--data-dir", this.dataDir, ...this.args], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, NO_COLOR: "1", RUST_LOG: process.env.RUST_LOG ?? "info,coachsync_server=debug,coachsync_core=debug" },
    });
    this.proc = proc;
    this.exit = new Promise(resolve => proc.once("exit", (code, signal) => resolve({ code, signal })));
    const run = this.logs.length;
    this.logs.push(`--- start ${SERVER_BIN} --listen ${this.listen} ${this.args.join(" ")} (run ${run})`);

    let buffered = "";
    const port = new Promise((resolve, reject) => {
      proc.stderr.setEncoding("utf8");
      proc.stderr.on("data", chunk => {
        buffered += chunk;
        let nl;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = stripAnsi(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
          this.logs.push(line);
          if (this.logs.length > 5000) this.logs.splice(0, 1000);
          if (process.env.COACHSYNC_TEST_LOG) process.stderr.write(`[server] ${line}\n`);
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
          if (m) resolve(Number(m[1]));
        }
      });
      proc.once("error", reject);
      proc.once("exit", (code, signal) =>
        reject(new Error(`server exited before listening (code ${code}, signal ${signal}):\n${this.logTail()}`)),
      );
    });
    this.port = await withTimeout(port, TIMEOUTS.serverStart, "server to log `listening on`");
    // From now on, the port is fixed: a restart reuses it.
    this.listen = `127.0.0.1:${this.port}`;
    return this;
  }

  /** SIGTERM, then wait for the exit; returns {code, signal}. SIGKILL if it hangs. */
  async stop() {
    if (!this.running) return this.exit ? await this.exit : { code: null, signal: null };
    this.proc.kill("SIGTERM");
    try {
      return await withTimeout(this.exit, TIMEOUTS.serverStop, "server to exit after SIGTERM");
    } catch (e) {
      this.proc.kill("SIGKILL");
      await this.exit;
      throw e;
    }
  }

  /** Stops (asserting nothing) and starts again on the same port and data dir. */
  async restart() {
    const exit = await this.stop();
    await this.start();
    return exit;
  }

  logTail(n = 40) {
    return this.logs.slice(-n).join("\n");
  }
}

/** Makes a fresh temporary data directory. */
export function makeDataDir() {
  return mkdtemp(join(tmpdir(), "coachsync-js-test-"));
}

// ---------------------------------------------------------------------------
// Resource tracking.

const repos = new Set();
const sockets = new Set();
const servers = new Set();
const dataDirs = new Set();

/** Shuts down every repo, socket and server made through these helpers. */
export async function cleanup() {
  for (const repo of [...repos]) {
    try {
      await shutdownRepo(repo);
    } catch (e) {
      console.error(`shutting down a repo: ${e.message}`);
    }
  }
  for (const ws of sockets) ws.terminate();
  sockets.clear();
  for (const server of servers) {
    try {
      await server.stop();
    } catch (e) {
      console.error(`stopping server: ${e.message}`);
    }
  }
  servers.clear();
  for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
  dataDirs.clear();
}

/**
 * Starts a server on a fresh temporary data dir (the caller awaits it in a
 * `before()` hook); `cleanup()` stops it and removes the dir.
 */
export async function startServer({ args = [], secure = false } = {}) {
  const dataDir = await makeDataDir();
  dataDirs.add(dataDir);
  const server = new ServerProcess({ dataDir, args, secure });
  servers.add(server);
  await server.start();
  return server;
}

let afterRegistered = false;
/** Call at the top level of a test file: registers `cleanup()` to run after all its tests. */
export function useCleanup() {
  if (afterRegistered) return;
  afterRegistered = true;
  after(cleanup);
}

// ---------------------------------------------------------------------------
// JS clients.

/** An in-memory StorageAdapterInterface (gives the client a real storageId). */
export class MemoryStorageAdapter {
  #data = new Map(); // JSON key -> Uint8Array

  static #startsWith(key, prefix) {
    return prefix.every((part, i) => key[i] === part);
  }
  async load(key) {
    return this.#data.get(JSON.stringify(key));
  }
  async save(key, data) {
    this.#data.set(JSON.stringify(key), data);
  }
  async remove(key) {
    this.#data.delete(JSON.stringify(key));
  }
  async loadRange(prefix) {
    return [...this.#data]
      .map(([k, data]) => ({ key: JSON.parse(k), data }))
      .filter(({ key }) => MemoryStorageAdapter.#startsWith(key, prefix));
  }
  async removeRange(prefix) {
    for (const k of [...this.#data.keys()]) {
      if (MemoryStorageAdapter.#startsWith(JSON.parse(k), prefix)) this.#data.delete(k);
    }
  }
}

export function randomPeerId(prefix = "js") {
  return `${prefix}-${randomBytes(6).toString("hex")}`;
}

/**
 * A JS Repo connected to `wsUrl` through the stock WebSocket client adapter.
 * Tracked: `cleanup()` shuts it down if the test did not.
 */
export function makeRepo(wsUrl, { storage, peerId = randomPeerId(), retryInterval } = {}) {
  const adapter = retryInterval === undefined ? new WebSocketClientAdapter(wsUrl) : new WebSocketClientAdapter(wsUrl, retryInterval);
  const repo = new Repo({
    network: [adapter],
    storage,
    peerId,
    sharePolicy: async () => true,
  });
  repo.__adapter = adapter;
  repo.__wire = tapWire(adapter);
  repos.add(repo);
  return repo;
}

const WIRE_LOG_LEN = 200;
const started = performance.now();
const short = h => String(h).slice(0, 8);

function describeMessage(m) {
  let text = `${m.type} ${m.senderId ?? "-"} -> ${m.targetId ?? "-"}`;
  if (m.documentId) text += ` doc=${short(m.documentId)}`;
  if ((m.type === "sync" || m.type === "request") && m.data) {
    try {
      const s = Automerge.decodeSyncMessage(m.data);
      text += ` heads=[${s.heads.map(short)}] need=${s.need.length} have=${s.have.length} changes=${s.changes.length}`;
    } catch (e) {
      text += ` (undecodable sync data: ${e.message})`;
    }
  }
  return text;
}

/**
 * Keeps a short log of the frames a client adapter sends and receives, printed
 * when a wait on it times out (the evidence for a server bug report).
 */
function tapWire(adapter) {
  const log = [];
  const push = line => {
    log.push(`${(performance.now() - started).toFixed(1).padStart(9)} ms ${line}`);
    if (log.length > WIRE_LOG_LEN) log.shift();
  };
  const send = adapter.send.bind(adapter);
  adapter.send = message => {
    push(`out ${describeMessage(message)}`);
    return send(message);
  };
  const receive = adapter.receiveMessage.bind(adapter);
  adapter.receiveMessage = bytes => {
    try {
      push(`in  ${describeMessage(decodeFrame(bytes))}`);
    } catch (e) {
      push(`in  (undecodable frame: ${e.message})`);
    }
    return receive(bytes);
  };
  adapter.on("peer-candidate", ({ peerId }) => push(`peer-candidate ${peerId}`));
  adapter.on("peer-disconnected", ({ peerId }) => push(`peer-disconnected ${peerId}`));
  return log;
}

/** Prints the evidence for a failed wait: the client's wire log and the server logs. */
export function dumpDiagnostics(repo, reason) {
  const lines = [`=== diagnostics: ${reason}`];
  if (repo?.__wire) lines.push(`--- wire log of ${repo.peerId} (last ${repo.__wire.length} frames)`, ...repo.__wire);
  for (const server of servers) lines.push(`--- server log (port ${server.port})`, server.logTail(60));
  console.error(lines.join("\n"));
}

/** Shuts a repo down (idempotent, bounded). */
export async function shutdownRepo(repo) {
  if (!repos.has(repo)) return;
  repos.delete(repo);
  try {
    await withTimeout(repo.shutdown(), 5_000, "repo.shutdown()");
  } catch (e) {
    // A repo whose socket is already gone fails an internal assertion in
    // disconnect(); its socket is closed either way.
    if (!/timed out/.test(e.message)) return;
    throw e;
  }
}

/** Waits until the repo has the server as a connected peer; returns the server's peer ID. */
export function waitForPeer(repo, timeout = TIMEOUTS.sync) {
  return waitFor(() => repo.peers[0], { timeout, label: `repo ${repo.peerId} to see the server as a peer` });
}

/** `repo.find(url)` bounded by `timeout` (aborts the find when it expires). */
export async function findDoc(repo, url, timeout = TIMEOUTS.sync) {
  const signal = AbortSignal.timeout(timeout);
  return withTimeout(repo.find(url, { signal }), timeout + 100, `find(${url})`);
}

const sortedHeads = heads => [...(heads ?? [])].sort();
export const sameHeads = (a, b) => JSON.stringify(sortedHeads(a)) === JSON.stringify(sortedHeads(b));

/**
 * Waits until the server has told this repo (through the sync protocol) that
 * it holds exactly the handle's current heads.
 */
export async function waitServerHas(repo, handle, timeout = TIMEOUTS.sync) {
  let storageId;
  try {
    const serverPeer = await waitForPeer(repo, timeout);
    storageId = await waitFor(() => repo.getStorageIdOfPeer(serverPeer), {
      timeout,
      label: "the server's storageId in its peer metadata",
    });
    await waitFor(() => sameHeads(handle.getSyncInfo(storageId)?.lastHeads, handle.heads()), {
      timeout,
      label: `server to acknowledge heads ${JSON.stringify(handle.heads())} of ${handle.url}`,
    });
  } catch (e) {
    const acked = storageId && handle.getSyncInfo(storageId)?.lastHeads;
    e.message += `; the server last announced heads ${JSON.stringify(acked)} to ${repo.peerId}; peers now ${JSON.stringify(repo.peers)}`;
    dumpDiagnostics(repo, e.message);
    throw e;
  }
}

/** Plain JSON value of a handle's document. */
export const docJson = handle => JSON.parse(JSON.stringify(handle.doc()));

// ---------------------------------------------------------------------------
// Raw wire-level client.

// Same settings as automerge-repo's helpers/cbor.js.
const encoder = new Encoder({ tagUint8Array: false, useRecords: false });
export const encodeFrame = value => encoder.encode(value);
export const decodeFrame = bytes => cborDecode(new Uint8Array(bytes));

/**
 * A raw `ws` client. Received frames queue up; `next()` takes the next one.
 * `closed` resolves with {code, reason, at} when the socket closes.
 */
export class RawClient {
  constructor(url) {
    this.url = url;
    this.ws = new WebSocket(url);
    sockets.add(this.ws);
    this.frames = []; // {at, raw, message | decodeError, binary}
    this.waiters = [];
    this.ws.on("message", (data, isBinary) => {
      const frame = { at: performance.now(), raw: data, binary: isBinary };
      try {
        frame.message = decodeFrame(data);
      } catch (e) {
        frame.decodeError = e;
      }
      this.frames.push(frame);
      this.#wake();
    });
    this.ws.on("error", () => {}); // surfaced through `closed`
    this.closed = new Promise(resolve => {
      this.ws.once("close", (code, reason) => {
        sockets.delete(this.ws);
        resolve({ code, reason: reason.toString(), at: performance.now() });
        this.#wake();
      });
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", resolve);
      this.ws.once("error", reject);
      this.ws.once("close", () => reject(new Error("closed before open")));
    });
  }

  #wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  async open(timeout = TIMEOUTS.frame) {
    await withTimeout(this.opened, timeout, `open ${this.url}`);
    return this;
  }

  send(message) {
    this.ws.send(encodeFrame(message), { binary: true });
  }

  sendRaw(bytes, binary = true) {
    this.ws.send(bytes, { binary });
  }

  get isClosed() {
    return this.ws.readyState === WebSocket.CLOSED;
  }

  /** The next received frame; rejects on timeout or if the socket closed first. */
  async next(timeout = TIMEOUTS.frame) {
    const deadline = Date.now() + timeout;
    for (;;) {
      if (this.frames.length) return this.frames.shift();
      if (this.isClosed) throw new Error("socket closed while waiting for a frame");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${timeout} ms`);
      await withTimeout(new Promise(r => this.waiters.push(r)), left, "next frame").catch(() => {});
    }
  }

  /** The close, bounded. */
  waitClosed(timeout = TIMEOUTS.frame) {
    return withTimeout(this.closed, timeout, "socket to close");
  }

  close() {
    this.ws.close();
  }

  terminate() {
    this.ws.terminate();
  }
}

export function joinMessage(senderId, peerMetadata = { isEphemeral: true }) {
  return { type: "join", senderId, supportedProtocolVersions: ["1"], peerMetadata };
}

/** GET a URL; resolves {status, body}. */
export function get(url, timeout = TIMEOUTS.frame) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = httpGet(url, { agent: false }, res => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", c => (body += c));
        res.on("end", () => resolve({ status: res.statusCode, body }));
      });
      req.on("error", reject);
    }),
    timeout,
    `GET ${url}`,
  );
}

// ---------------------------------------------------------------------------
// The terminal device, `coachsync device`, as a user runs it.

/** Bound on one device CLI run (a `sync` given `--timeout S` finishes well within it). */
export const CLI_TIMEOUT = 20_000;

const deviceDirs = new Set();
const deviceChildren = new Set();

after(async () => {
  for (const child of deviceChildren) child.kill("SIGKILL");
  deviceChildren.clear();
  for (const dir of deviceDirs) await rm(dir, { recursive: true, force: true });
  deviceDirs.clear();
});

/** A fresh, empty device data dir (removed after the file's tests). */
export async function makeDeviceDir(name = "device") {
  const dir = await mkdtemp(join(tmpdir(), `coachsync-js-${name}-`));
  deviceDirs.add(dir);
  return dir;
}

/**
 * Runs `coachsync device --data-dir DIR [--server URL] ...args`, with `input` on
 * stdin (stdin is closed either way). Resolves {code, signal, stdout, stderr,
 * ms}; rejects if it has not exited within `timeout` (and kills it).
 */
export function runDevice(dataDir, args, { input, server, timeout = CLI_TIMEOUT } = {}) {
  const env = { ...process.env, NO_COLOR: "1" };
  // The device is configured by its arguments alone, whatever the caller's shell has set.
  delete env.COACHSYNC_SERVER;
  delete env.COACHSYNC_DEVICE_DIR;
  const argv = ["device", "--data-dir", dataDir, ...(server ? ["--server", server] : []), ...args];
  const label = `coachsync ${argv.join(" ")}`;
  const started = performance.now();
  const child = spawn(SERVER_BIN, argv, { stdio: ["pipe", "pipe", "pipe"], env });
  deviceChildren.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", c => (stdout += c));
  child.stderr.setEncoding("utf8").on("data", c => (stderr += c));
  child.stdin.on("error", () => {}); // it may exit before reading stdin
  child.stdin.end(input ?? "");
  // "close", not "exit": all of stdout and stderr has been read by then.
  const done = new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      deviceChildren.delete(child);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
  return withTimeout(done, timeout, label).catch(e => {
    child.kill("SIGKILL");
    e.message += `\nstdout so far: ${JSON.stringify(stdout)}\nstderr so far: ${JSON.stringify(stderr)}`;
    throw e;
  });
}

/** How a CLI run ended, for assertion messages. */
export const outcome = r =>
  `exit ${r.code} (signal ${r.signal}) after ${r.ms.toFixed(0)} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/**
 * Runs `coachsync admin ...args --data-dir DIR` (through the running server's
 * admin socket when one holds DIR); resolves its last output line (the token of
 * `user add`), rejects with its error.
 */
export async function runAdmin(dataDir, args) {
  const child = spawn(SERVER_BIN, ["admin", ...args, "--data-dir", dataDir], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", c => (stdout += c));
  child.stderr.setEncoding("utf8").on("data", c => (stderr += c));
  const code = await withTimeout(new Promise(resolve => child.once("close", resolve)), CLI_TIMEOUT, `coachsync admin ${args.join(" ")}`);
  if (code !== 0) throw new Error(`coachsync admin ${args.join(" ")}: exit ${code}: ${stderr}`);
  return stdout.trim().split("\n").at(-1);
}
