// Shared helpers for the interop tests: run the real coachsync server binary,
// make real automerge-repo 2.x JavaScript clients, and speak the wire protocol
// by hand with a raw `ws` client.
//
// Every wait here is bounded; every resource made here is released by
// `cleanup()` (registered by `useCleanup()` as an `after()` hook), so that each
// test file's process exits on its own.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { get as httpGet } from "node:http";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after } from "node:test";

import * as Automerge from "@automerge/automerge";
import { Repo, splice } from "@automerge/automerge-repo";
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
const balancers = new Set();
const clusters = new Set();

/**
 * Shuts down every repo, socket, balancer, server and PostgreSQL cluster made
 * through these helpers (servers before the database they use).
 */
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
  // Balancers stop taking connections, and close the ones they pipe once the
  // servers have closed their ends.
  for (const balancer of balancers) balancer.hold();
  for (const server of servers) {
    try {
      await server.stop();
    } catch (e) {
      console.error(`stopping server: ${e.message}`);
    }
  }
  servers.clear();
  for (const balancer of balancers) balancer.close();
  balancers.clear();
  for (const cluster of clusters) {
    try {
      await cluster.stop();
    } catch (e) {
      console.error(`stopping the PostgreSQL cluster: ${e.message}`);
    }
  }
  clusters.clear();
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
// A private PostgreSQL cluster, as tests/src/postgres.rs makes for the Rust
// tests: Debian's `initdb` and `pg_ctl` in a temporary directory, listening on
// 127.0.0.1 and a free port (and a socket in that directory). The system's own
// PostgreSQL service is never used or touched. `initdb` refuses to run as root,
// so as root the cluster runs as the `postgres` OS user (through `runuser`), in
// a directory it owns.

/** The environment variable that turns a missing PostgreSQL into a failure. */
export const PG_REQUIRE_ENV = "COACHSYNC_REQUIRE_POSTGRES";

const PG_MISSING =
  "PostgreSQL's initdb and pg_ctl were not found (install Debian's postgresql package, or set COACHSYNC_PG_BIN)";

const isFile = path => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};
const completePgBin = dir => ["initdb", "pg_ctl", "postgres"].every(b => isFile(join(dir, b)));

/**
 * The directory holding `initdb`, `pg_ctl` and `postgres`: `COACHSYNC_PG_BIN`,
 * the newest `/usr/lib/postgresql/N/bin`, or where `initdb` on the PATH really
 * is; undefined when there is none.
 */
export function pgBinaries() {
  if (process.env.COACHSYNC_PG_BIN) {
    const dir = process.env.COACHSYNC_PG_BIN;
    return completePgBin(dir) ? dir : undefined;
  }
  let entries = [];
  try {
    entries = readdirSync("/usr/lib/postgresql");
  } catch {
    // Not installed there.
  }
  const newest = entries
    .filter(name => /^\d+$/.test(name))
    .map(name => ({ version: Number(name), dir: join("/usr/lib/postgresql", name, "bin") }))
    .filter(({ dir }) => completePgBin(dir))
    .sort((a, b) => a.version - b.version)
    .at(-1);
  if (newest) return newest.dir;
  for (const dir of (process.env.PATH ?? "").split(":").filter(Boolean)) {
    if (!isFile(join(dir, "initdb"))) continue;
    try {
      const real = dirname(execFileSync("readlink", ["-f", join(dir, "initdb")], { encoding: "utf8" }).trim());
      if (completePgBin(real)) return real;
    } catch {
      // Unresolvable: look further.
    }
  }
  return undefined;
}

/**
 * Why a test that needs PostgreSQL skips (its binaries are missing), or
 * undefined when it runs. With COACHSYNC_REQUIRE_POSTGRES=1 it never skips:
 * `startPostgres()` fails instead.
 */
export function postgresSkipReason() {
  if (pgBinaries() || process.env[PG_REQUIRE_ENV] === "1") return undefined;
  return PG_MISSING;
}

/** Runs a program to its end; rejects with its output when it fails or outlasts `timeout`. */
function runProgram(program, args, { cwd, timeout = 90_000 } = {}) {
  const label = `${program} ${args.join(" ")}`;
  const child = spawn(program, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", c => (output += c));
  child.stderr.setEncoding("utf8").on("data", c => (output += c));
  const done = new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      if (code === 0) resolve(output);
      else reject(new Error(`${label} failed (code ${code}, signal ${signal}):\n${output}`));
    });
  });
  return withTimeout(done, timeout, label).catch(e => {
    child.kill("SIGKILL");
    throw e;
  });
}

/** A numeric ID of the `postgres` OS user (`-u`) or its group (`-g`). */
function postgresId(flag) {
  try {
    return Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim());
  } catch (e) {
    throw new Error(`there is no postgres OS user to run the cluster as (initdb refuses root): ${e.stderr ?? e.message}`);
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

export class PgCluster {
  constructor({ bin, dir, asPostgres }) {
    this.bin = bin;
    this.dir = dir;
    this.asPostgres = asPostgres;
    this.port = undefined;
    this.started = false;
  }

  get dataDir() {
    return join(this.dir, "data");
  }

  /** The URL of database `name`, as the superuser. */
  url(name = "postgres") {
    return `postgres://postgres@127.0.0.1:${this.port}/${name}`;
  }

  /** [program, args] running one of the cluster's binaries as its owner. */
  #command(name, args) {
    const program = join(this.bin, name);
    return this.asPostgres ? ["runuser", ["-u", "postgres", "--", program, ...args]] : [program, args];
  }

  #run(name, args) {
    const [program, argv] = this.#command(name, args);
    // The cluster's directory as the working directory: the postgres user may not reach ours.
    return runProgram(program, argv, { cwd: this.dir });
  }

  async start() {
    await this.#run("initdb", [
      "--pgdata",
      this.dataDir,
      "--username=postgres",
      "--auth=trust",
      "--encoding=UTF8",
      "--locale=C",
      // The cluster lives as long as a test file: initdb's own fsyncs buy nothing.
      "--no-sync",
    ]);
    // A port that was free a moment ago may be taken by the time the server binds.
    let lastError;
    for (let attempt = 0; attempt < 3; attempt++) {
      this.port = await freePort();
      const options = `-c listen_addresses=127.0.0.1 -p ${this.port} -k ${this.dir} -c max_connections=60 -c shared_buffers=16MB`;
      try {
        await this.#run("pg_ctl", ["--pgdata", this.dataDir, "--log", join(this.dir, "server.log"), "--wait", "--timeout=60", "-o", options, "start"]);
        this.started = true;
        return this;
      } catch (e) {
        lastError = e;
      }
    }
    lastError.message += `\n${this.logTail()}`;
    throw lastError;
  }

  /** The end of the cluster's own log. */
  logTail(n = 40) {
    try {
      return readFileSync(join(this.dir, "server.log"), "utf8").split("\n").slice(-n).join("\n");
    } catch {
      return "(no server.log)";
    }
  }

  #stopArgs() {
    // Immediate: the cluster's data is thrown away with the directory.
    return ["--pgdata", this.dataDir, "--mode=immediate", "--wait", "stop"];
  }

  /** Stops the cluster and removes its directory (idempotent). */
  async stop() {
    if (this.started) {
      this.started = false;
      try {
        await this.#run("pg_ctl", this.#stopArgs());
      } finally {
        await rm(this.dir, { recursive: true, force: true });
      }
    } else {
      await rm(this.dir, { recursive: true, force: true });
    }
  }

  /** The same, synchronously: for a process that exits without running `cleanup()`. */
  stopSync() {
    if (this.started) {
      this.started = false;
      const [program, argv] = this.#command("pg_ctl", this.#stopArgs());
      try {
        execFileSync(program, argv, { cwd: this.dir, stdio: "ignore", timeout: 30_000 });
      } catch {
        // Best effort.
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

let pgExitHook = false;

/**
 * Starts a private PostgreSQL cluster (the caller awaits it in a `before()`
 * hook; `postgresSkipReason()` tells whether to skip instead); `cleanup()` stops
 * it after the servers and removes its directory, and so does the process's exit
 * if `cleanup()` never ran. Connect to `cluster.url()`.
 */
export async function startPostgres() {
  const bin = pgBinaries();
  if (!bin) throw new Error(`${PG_MISSING}, and ${PG_REQUIRE_ENV}=1 requires them`);
  const asPostgres = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), "coachsync-pg-"));
  const cluster = new PgCluster({ bin, dir, asPostgres });
  clusters.add(cluster);
  if (!pgExitHook) {
    pgExitHook = true;
    process.once("exit", () => {
      for (const c of clusters) c.stopSync();
    });
  }
  try {
    if (asPostgres) await chown(dir, postgresId("-u"), postgresId("-g"));
    await cluster.start();
  } catch (e) {
    e.message = `cannot start a private PostgreSQL cluster: ${e.message}`;
    throw e;
  }
  return cluster;
}

// ---------------------------------------------------------------------------
// A TCP load balancer in front of several server nodes.

/**
 * A TCP load balancer on 127.0.0.1, the way an operator puts several server
 * nodes behind one address: each new connection goes to the first port in
 * `backends` (which the test may change at any time) that accepts a TCP
 * connection, and bytes are piped both ways until either side closes, which
 * closes the other. `connections` records where each one went.
 *
 * `hold()` stops listening, so new connections are refused (ECONNREFUSED) until
 * `release()`; connections already piped are kept. A connection that no backend
 * accepts is closed at once, which the stock JS WebSocket client adapter throws
 * on as an uncaught error (it only tolerates ECONNREFUSED): a test that takes
 * every backend away holds the balancer meanwhile.
 */
export class TcpBalancer {
  #sockets = new Set();
  #listener = undefined;

  constructor(backends = []) {
    this.backends = [...backends];
    this.port = undefined;
    this.closed = false;
    /** @type {{backend: number | null, at: number}[]} */
    this.connections = [];
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/sync`;
  }

  get held() {
    return this.#listener === undefined;
  }

  /** Listens (on the port it had, if it had one). */
  async listen() {
    const listener = createServer(socket => this.#accept(socket));
    await new Promise((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(this.port ?? 0, "127.0.0.1", () => {
        listener.off("error", reject);
        resolve();
      });
    });
    this.#listener = listener;
    this.port = listener.address().port;
    return this;
  }

  /** Refuses new connections (stops listening); piped ones go on. */
  hold() {
    this.#listener?.close();
    this.#listener = undefined;
  }

  /** Takes new connections again, on the same port. */
  async release() {
    if (this.held && !this.closed) await this.listen();
  }

  /** Closes every piped connection (both sides). */
  dropAll() {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  close() {
    this.closed = true;
    this.hold();
    this.dropAll();
  }

  #track(socket) {
    this.#sockets.add(socket);
    socket.on("error", () => {}); // surfaced as "close"
    socket.once("close", () => this.#sockets.delete(socket));
  }

  #accept(client) {
    if (this.closed) return client.destroy();
    this.#track(client);
    client.setNoDelay(true);
    const backends = [...this.backends];
    const tryBackend = i => {
      if (client.destroyed) return;
      if (i >= backends.length) {
        this.connections.push({ backend: null, at: performance.now() });
        client.destroy();
        return;
      }
      const upstream = createConnection({ host: "127.0.0.1", port: backends[i] });
      this.#track(upstream);
      let connected = false;
      upstream.once("error", () => {
        if (!connected) tryBackend(i + 1);
      });
      upstream.once("connect", () => {
        connected = true;
        if (client.destroyed) return upstream.destroy();
        this.connections.push({ backend: backends[i], at: performance.now() });
        upstream.setNoDelay(true);
        const closeBoth = () => {
          client.destroy();
          upstream.destroy();
        };
        client.once("close", closeBoth);
        upstream.once("close", closeBoth);
        client.pipe(upstream);
        upstream.pipe(client);
      });
    };
    tryBackend(0);
  }
}

/** Starts a balancer in front of `backends` (ports); `cleanup()` closes it. */
export async function startBalancer(backends = []) {
  const balancer = new TcpBalancer(backends);
  balancers.add(balancer);
  return balancer.listen();
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

/**
 * `waitServerHas` without its polling delay: resolves in the very event in which
 * the server's acknowledgement of the handle's current heads arrives (or at once
 * if it already has). For acting on a server right after it acknowledged.
 */
export async function whenServerHas(repo, handle, timeout = TIMEOUTS.sync) {
  const label = `server to acknowledge heads ${JSON.stringify(handle.heads())} of ${handle.url}`;
  const serverPeer = await waitForPeer(repo, timeout);
  const storageId = await waitFor(() => repo.getStorageIdOfPeer(serverPeer), {
    timeout,
    label: "the server's storageId in its peer metadata",
  });
  const has = () => sameHeads(handle.getSyncInfo(storageId)?.lastHeads, handle.heads());
  if (has()) return;
  let listener;
  try {
    await withTimeout(
      new Promise(resolve => {
        listener = () => {
          if (has()) resolve();
        };
        handle.on("remote-heads", listener);
      }),
      timeout,
      label,
    );
  } catch (e) {
    e.message += `; the server last announced heads ${JSON.stringify(handle.getSyncInfo(storageId)?.lastHeads)} to ${repo.peerId}`;
    dumpDiagnostics(repo, e.message);
    throw e;
  } finally {
    handle.off("remote-heads", listener);
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

// ---------------------------------------------------------------------------
// Concurrent edits of one document from two clients.

/**
 * Makes `rounds` interleaved edits through two handles of one document (created as
 * `{ text: "|", counts: {} }`): each side writes its own keys and inserts into the
 * shared text, `a` at its start and `b` at its end, with short random pauses so that
 * some changes cross on the wire.
 */
export async function interleaveEdits(handleA, handleB, rounds) {
  for (let i = 0; i < rounds; i++) {
    handleA.change(d => {
      d[`a${i}`] = i;
      d.counts[`a${i}`] = `alice-${i}`;
      splice(d, ["text"], 0, 0, `<a${i}>`);
    });
    handleB.change(d => {
      d[`b${i}`] = i;
      d.counts[`b${i}`] = `bob-${i}`;
      splice(d, ["text"], d.text.length, 0, `<b${i}>`);
    });
    await sleep(Math.floor(Math.random() * 25));
  }
}

/** Asserts that `merged` holds every edit of `interleaveEdits`, and its text nothing else. */
export function assertInterleaved(merged, rounds) {
  let textLength = "|".length;
  for (let i = 0; i < rounds; i++) {
    assert.equal(merged[`a${i}`], i);
    assert.equal(merged[`b${i}`], i);
    assert.equal(merged.counts[`a${i}`], `alice-${i}`);
    assert.equal(merged.counts[`b${i}`], `bob-${i}`);
    assert.ok(merged.text.includes(`<a${i}>`), `text has <a${i}>`);
    assert.ok(merged.text.includes(`<b${i}>`), `text has <b${i}>`);
    textLength += `<a${i}><b${i}>`.length;
  }
  assert.equal(merged.text.length, textLength);
  assert.ok(merged.text.includes("|"), "text keeps its original character");
}
