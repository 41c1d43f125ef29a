// The coach app in Debian's Chromium against the real `coachsync serve`.
//
// - The server binary: $COACHSYNC_BIN, else $CARGO_TARGET_DIR/debug/coachsync, else
//   target/debug/coachsync at the repository root.
// - The app: served from disk with --app-dir ($COACHSYNC_APP_DIR, else app/dist: run
//   `npm ci && npm run build` in app/ first), so a test run never rebuilds the server;
//   with COACHSYNC_APP_DIR=embedded, the app built into the binary, as it ships (the
//   test command runs them so).
// - Every server, browser and temporary directory made here is released by
//   cleanup(), registered with useCleanup() as an after() hook.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, "..", "..", "..");
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR) : join(REPO_ROOT, "target");
export const SERVER_BIN = process.env.COACHSYNC_BIN || join(TARGET, "debug", "coachsync");
export const APP_DIR = process.env.COACHSYNC_APP_DIR || join(REPO_ROOT, "app", "dist");
const EMBEDDED = APP_DIR === "embedded";
export const ARTIFACTS = join(HERE, "..", "artifacts");
mkdirSync(ARTIFACTS, { recursive: true });

export const sleep = ms => new Promise(r => setTimeout(r, ms));

export async function withTimeout(promise, ms, label) {
  let timer;
  try {
    return await Promise.race([promise, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export async function waitFor(predicate, { timeout = 15_000, interval = 50, label = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${label}`);
    await sleep(interval);
  }
}

export class Server {
  constructor(dataDir) {
    this.dataDir = dataDir;
    this.listen = "127.0.0.1:0";
    this.logs = [];
  }
  get url() {
    return `http://127.0.0.1:${this.port}`;
  }
  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/sync`;
  }
  async start() {
    if (!existsSync(SERVER_BIN)) throw new Error(`no server binary at ${SERVER_BIN}: cargo build -p coachsync-server --bin coachsync, or set COACHSYNC_BIN`);
    if (!EMBEDDED && !existsSync(join(APP_DIR, "index.html"))) throw new Error(`no app build at ${APP_DIR}: cd app && npm ci && npm run build`);
    const app = EMBEDDED ? [] : ["--app-dir", APP_DIR];
    const proc = spawn(SERVER_BIN, ["serve", "--listen", this.listen, "--data-dir", this.dataDir, ...app], {
      stdio: ["ignore", "ignore", "pipe"],
      env: serverEnv(),
    });
    this.proc = proc;
    this.exited = new Promise(r => proc.once("exit", (code, signal) => r({ code, signal })));
    let buffered = "";
    const port = new Promise((resolve, reject) => {
      proc.stderr.setEncoding("utf8").on("data", chunk => {
        buffered += chunk;
        let nl;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl).replace(/\x1b\[[0-9;]*m/g, "");
          buffered = buffered.slice(nl + 1);
          this.logs.push(line);
          if (this.logs.length > 3000) this.logs.splice(0, 1000);
          if (process.env.COACHSYNC_TEST_LOG) process.stderr.write(`[server] ${line}\n`);
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
          if (m) resolve(Number(m[1]));
        }
      });
      proc.once("exit", (code, signal) => reject(new Error(`server exited (code ${code}, signal ${signal}):\n${this.logs.slice(-30).join("\n")}`)));
    });
    this.port = await withTimeout(port, 20_000, "server to listen");
    this.listen = `127.0.0.1:${this.port}`;
    return this;
  }
  get running() {
    return this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }
  async stop(signal = "SIGTERM") {
    if (!this.running) return;
    this.proc.kill(signal);
    await withTimeout(this.exited, 15_000, `server exit after ${signal}`).catch(async e => {
      this.proc.kill("SIGKILL");
      await this.exited;
      throw e;
    });
  }
  /** SIGKILL: no shutdown, no flush: what was acknowledged must be on disk already. */
  async kill() {
    await this.stop("SIGKILL");
  }
  async admin(args) {
    return runAdmin(this.dataDir, args);
  }
}

export async function runAdmin(dataDir, args) {
  const child = spawn(SERVER_BIN, ["admin", ...args, "--data-dir", dataDir], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", c => (out += c));
  child.stderr.setEncoding("utf8").on("data", c => (err += c));
  const code = await withTimeout(new Promise(r => child.once("close", r)), 30_000, `coachsync admin ${args.join(" ")}`);
  if (code !== 0) throw new Error(`coachsync admin ${args.join(" ")}: exit ${code}: ${err}`);
  return out.trim().split("\n").at(-1);
}

const cleanups = [];
export function onCleanup(fn) {
  cleanups.push(fn);
}
let registered = false;
export function useCleanup() {
  if (registered) return;
  registered = true;
  after(async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (e) {
        console.error(`cleanup: ${e.message}`);
      }
    }
  });
}

export async function startServer() {
  const dataDir = await mkdtemp(join(tmpdir(), "coachsync-browser-"));
  const server = new Server(dataDir);
  onCleanup(() => rm(dataDir, { recursive: true, force: true }));
  onCleanup(() => server.stop().catch(() => server.kill()));
  await server.start();
  return server;
}

/** Users and a coaching relationship: coach ↔ principal at a school; the principal's supervisor. */
export async function seedPeople(server, { school = "Lakeview Elementary" } = {}) {
  const tokens = {};
  for (const [name, role] of [["dana", "coach"], ["victoria", "client"], ["sam", "evaluator"]]) {
    tokens[name] = await server.admin(["user", "add", "--name", name, "--role", role]);
  }
  const relationship = await server.admin(["relationship", "add", "--coach", "dana", "--client", "victoria", "--school", school]);
  return { tokens, relationship, school };
}

/** A fresh one-time invite code for `name`. */
export async function inviteCode(server, name) {
  const link = await server.admin(["user", "invite", "--name", name]);
  const m = /#\/invite\/([^\s/]+)$/.exec(link);
  if (!m) throw new Error(`no invite code in ${JSON.stringify(link)}`);
  return m[1];
}

export async function launchBrowser() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  onCleanup(() => browser.close());
  return browser;
}

export async function newContext(browser) {
  return browser.newContext({ viewport: { width: 360, height: 740 }, deviceScaleFactor: 1, serviceWorkers: "allow" });
}

/** Opens the invite link and waits for the signed-in header. */
export async function signIn(context, server, name) {
  const page = await context.newPage();
  collectConsole(page, name);
  await page.goto(`${server.url}/#/invite/${await inviteCode(server, name)}`);
  await page.getByTestId("user-name").waitFor({ timeout: 20_000 });
  return page;
}

export function collectConsole(page, who) {
  page.on("pageerror", e => console.error(`[${who} page error] ${e.message}`));
  if (process.env.COACHSYNC_TEST_LOG) page.on("console", m => console.error(`[${who} console] ${m.text()}`));
}

/** Waits until the service worker controls the page (the app shell is cached). */
export async function waitForServiceWorker(page) {
  await page.waitForFunction(async () => {
    const reg = await navigator.serviceWorker.getRegistration();
    return !!(reg && reg.active && navigator.serviceWorker.controller);
  }, null, { timeout: 20_000 });
}

/** The server's environment: this one, less COACHSYNC_APP_DIR (the app comes from
 * --app-dir or the binary, and here the variable may say "embedded"). */
function serverEnv() {
  const env = { ...process.env, NO_COLOR: "1", RUST_LOG: process.env.RUST_LOG ?? "info" };
  delete env.COACHSYNC_APP_DIR;
  return env;
}

export async function shot(page, name, { fullPage = true } = {}) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage }).catch(() => undefined);
}

/** The status the app shows for a document in its list ("safe" …), from the home screen. */
export async function listStatus(page, docId) {
  const row = page.locator(`li[data-doc-id="${docId}"] [data-status]`);
  if ((await row.count()) === 0) return undefined;
  return row.first().getAttribute("data-status");
}

export async function currentDocId(page) {
  const m = /#\/doc\/([^/?#]+)/.exec(page.url());
  return m?.[1];
}

export async function tokenOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem("cs:session") || "null")?.token);
}

/**
 * Validates a document's JSON as the project's own code does (`coachsync device
 * create` refuses an invalid coaching document and names every problem).
 */
export async function validateDocument(json) {
  const dir = await mkdtemp(join(tmpdir(), "coachsync-validate-"));
  try {
    const child = spawn(SERVER_BIN, ["device", "create", "--data-dir", dir], { stdio: ["pipe", "pipe", "pipe"] });
    let err = "";
    child.stderr.setEncoding("utf8").on("data", c => (err += c));
    child.stdout.resume();
    child.stdin.end(JSON.stringify(json));
    const code = await withTimeout(new Promise(r => child.once("close", r)), 30_000, "coachsync device create");
    return code === 0 ? "valid" : err.trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
