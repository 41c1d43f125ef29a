// The device's documents: one automerge-repo Repo (IndexedDB storage, one WebSocket
// to `/sync` on this origin), the honest per-document sync status, the outbox, and
// the list of documents this user knows about.
//
// Status. The server sends sync messages only for heads it has fsynced, and its
// `peer` message carries its storage ID. automerge-repo records, per document and
// per peer storage ID, the heads that peer last claimed (`handle.getSyncInfo`,
// emitted as `remote-heads`). A document is *safe on server* when every local
// change is an ancestor of those heads (less heads this device has not received):
// `getChangesSince(doc, known)` is empty. The heads at which that was last true are
// persisted, so the status survives a reload and a server restart (the server's
// store keeps what it acknowledged).
//
// Outbox. automerge-repo syncs only documents loaded in memory. Every document with
// a local change the server has not acknowledged is marked `dirty` in the persisted
// index; at start and at every (re)connection those are loaded, so they sync whether
// or not anyone opens them.
//
// Discovery. The server lists every document this user may read (`GET /api/docs`:
// kind, class, relationship, owner and the user's access). At start, at every
// (re)connection, when the app comes back to the foreground and while My documents
// is shown (every 10 s), the device fetches that list, keeps
// it (in the persisted index, for offline starts) and loads every listed document,
// so it syncs and stays on the phone.

// The wasm ships as its own hashed asset (precached by the service worker): 3.6 MB
// raw, far smaller gzipped than the base64 copy inside a script would be.
import automergeWasmUrl from "@automerge/automerge/automerge.wasm?url";
import {
  Automerge as A,
  type AutomergeUrl,
  type DocHandle,
  type DocumentId,
  type PeerId,
  Repo,
  decodeHeads,
  initializeWasm,
  interpretAsDocumentId,
  stringifyAutomergeUrl,
} from "@automerge/automerge-repo/slim";
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import type { Session } from "./session";

export { A };
export type { AutomergeUrl, DocHandle, DocumentId };

export type Status = "saving" | "saved-on-phone" | "waiting" | "safe" | "not-on-phone";

export const STATUS_LABEL: Record<Status, string> = {
  saving: "Saving on this phone…",
  "saved-on-phone": "Saved on this phone",
  waiting: "Waiting to sync",
  safe: "Safe on server",
  "not-on-phone": "On the server, not on this phone yet",
};

export type Access = "read" | "write";

/** One entry of `GET /api/docs`. */
export interface Listed {
  id: string;
  url: string;
  kind: string | null;
  class: "private" | "coaching" | "team" | "org" | null;
  relationship: string | null;
  group: string | null;
  owner: string | null;
  access: Access;
  createdMs: number | null;
}

/** What the device keeps about each document it knows (persisted in localStorage). */
export interface DocMeta {
  id: DocumentId;
  kind: string;
  title: string;
  school?: string;
  relationship?: string;
  createdAt: number;
  /** Created on this device by this user: theirs (write) until the server's list says otherwise. */
  own?: boolean;
  /** This user's access, from the server's last list. */
  access?: Access;
  /** In the server's last list. */
  listed?: boolean;
  owner?: string;
  /** For private notes: the observation's ID (from the notes' `observation` URL). */
  observation?: DocumentId;
  /** An observation still a draft, and whose observer (from the document). */
  draft?: boolean;
  observer?: string;
  /** Heads (encoded) at which the server last covered every local change. */
  safeHeads?: string[];
  safeAt?: number;
  /** Has local changes the server has not acknowledged: in the outbox. */
  dirty?: boolean;
  /** Known from the server's list only: not loaded on this device yet. */
  remoteOnly?: boolean;
}

const DOCS_KEY = "cs:docs";
const LISTED_KEY = "cs:listed-at";
const INDEX_VERSION_KEY = "cs:docs-version";
const SERVER_KEY = "cs:server-storage-id";

type Listener = () => void;

export interface PresenceEntry {
  name: string;
  peer: string;
  at: number;
}

export class Device {
  readonly repo: Repo;
  readonly session: Session;
  #metas: Record<string, DocMeta>;
  #listeners = new Set<Listener>();
  #tracked = new Map<DocumentId, DocHandle<any>>();
  #serverHeads = new Map<DocumentId, string[]>();
  #saving = new Map<DocumentId, number>();
  #serverPeer: PeerId | undefined;
  #serverStorageId: string | undefined;
  #lastConnectedAt: number | undefined;
  readonly adapter: WebSocketClientAdapter;
  readonly peerId: PeerId;

  constructor(session: Session) {
    this.session = session;
    this.#metas = readJson(DOCS_KEY, {});
    this.#migrate();
    this.#serverStorageId = localStorage.getItem(SERVER_KEY) ?? undefined;
    const wsOrigin = location.origin.replace(/^http/, "ws");
    this.adapter = new WebSocketClientAdapter(`${wsOrigin}/sync?token=${encodeURIComponent(session.token)}`, 2000);
    this.peerId = `app-${session.user.name}-${Math.random().toString(36).slice(2, 10)}` as PeerId;
    this.repo = new Repo({
      storage: new IndexedDBStorageAdapter("coachsync", "documents"),
      network: [this.adapter],
      peerId: this.peerId,
      sharePolicy: async () => true,
      saveDebounceRate: 50,
    });
    this.repo.networkSubsystem.on("peer", ({ peerId }) => {
      this.#serverPeer = peerId;
      this.#lastConnectedAt = Date.now();
      const storageId = this.repo.getStorageIdOfPeer(peerId);
      if (storageId) {
        if (this.#serverStorageId && this.#serverStorageId !== storageId) this.#forgetServer();
        this.#serverStorageId = storageId;
        localStorage.setItem(SERVER_KEY, storageId);
        for (const [id, handle] of this.#tracked) this.#readSyncInfo(id, handle);
      }
      void this.loadOutbox();
      void this.refreshDocs();
      this.#emit();
    });
    this.repo.networkSubsystem.on("peer-disconnected", ({ peerId }) => {
      if (peerId === this.#serverPeer) this.#serverPeer = undefined;
      this.#emit();
    });
    // The browser knows before the socket does: a phone that loses its network
    // keeps a dead socket open for a long while. Drop it at once (the status then
    // says "saved on this phone"), and reconnect as soon as the network is back
    // instead of waiting for the adapter's next retry.
    addEventListener("offline", () => {
      try {
        (this.adapter as any).socket?.close();
      } catch {
        /* already closed */
      }
    });
    addEventListener("online", () => {
      const a = this.adapter as any;
      if (!this.connected && a.peerId) a.connect(a.peerId, a.peerMetadata);
    });
    addEventListener("pagehide", () => void this.repo.flush());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") void this.repo.flush();
      // Back in the foreground: what was shared meanwhile.
      else if (this.connected) void this.refreshDocs();
    });
  }

  /**
   * An index written before the server's list was used: what was made here, or
   * belongs to one of the user's relationships, is the user's own until the list
   * says otherwise; the relationship indexes are no longer read.
   */
  #migrate() {
    if (localStorage.getItem(INDEX_VERSION_KEY) === "2") return;
    const mine = new Set(this.session.relationships.map(r => r.id));
    for (const meta of this.metas()) {
      const m = meta as DocMeta & { privateNotes?: unknown; indexed?: unknown; publish?: unknown };
      delete m.privateNotes;
      delete m.indexed;
      delete m.publish;
      if (!m.remoteOnly && m.own === undefined && m.kind !== "coaching-relationship" && (!m.relationship || mine.has(m.relationship))) m.own = true;
    }
    localStorage.setItem(DOCS_KEY, JSON.stringify(this.#metas));
    localStorage.setItem(INDEX_VERSION_KEY, "2");
  }

  /**
   * A server with another storage ID is another store (its data was replaced or
   * restored): nothing it acknowledged before counts. Every document goes back to
   * the outbox and is synced again.
   */
  #forgetServer() {
    this.#serverHeads.clear();
    for (const meta of this.metas()) {
      if (meta.remoteOnly) continue;
      this.#metas[meta.id] = { ...meta, safeHeads: undefined, safeAt: undefined, dirty: true };
    }
    localStorage.setItem(DOCS_KEY, JSON.stringify(this.#metas));
  }

  /** The server refused this device's token (revoked or expired). */
  tokenRefused = false;

  refuseToken() {
    this.tokenRefused = true;
    this.#emit();
  }

  get connected() {
    return this.#serverPeer !== undefined;
  }

  get lastConnectedAt() {
    return this.#lastConnectedAt;
  }

  _debugListeners() {
    return this.#listeners.size;
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit() {
    for (const l of [...this.#listeners]) l();
  }

  // --- the index -----------------------------------------------------------

  metas(): DocMeta[] {
    return Object.values(this.#metas);
  }

  meta(id: DocumentId): DocMeta | undefined {
    return this.#metas[id];
  }

  updateMeta(id: DocumentId, patch: Partial<DocMeta>) {
    const current = this.#metas[id] ?? ({ id, kind: "unknown", title: "", createdAt: Date.now() } as DocMeta);
    this.#metas[id] = { ...current, ...patch };
    localStorage.setItem(DOCS_KEY, JSON.stringify(this.#metas));
    this.#emit();
  }

  outbox(): DocumentId[] {
    return this.metas()
      .filter(m => m.dirty)
      .map(m => m.id);
  }

  // --- documents -------------------------------------------------------------

  /** Creates a document, saves it on this device and starts tracking its status. */
  async create<T extends Record<string, unknown>>(initial: T, meta: Omit<DocMeta, "id" | "createdAt">): Promise<DocHandle<T>> {
    const handle = this.repo.create<T>(initial);
    this.updateMeta(handle.documentId, { ...meta, createdAt: Date.now(), dirty: true, own: true });
    this.track(handle);
    await this.save(handle);
    return handle;
  }

  /** Applies a change, then saves it to IndexedDB before resolving. */
  change<T>(handle: DocHandle<T>, fn: (d: T) => void): Promise<void> {
    handle.change(fn as any);
    return this.save(handle);
  }

  async save(handle: DocHandle<any>) {
    const id = handle.documentId;
    this.#saving.set(id, (this.#saving.get(id) ?? 0) + 1);
    this.#emit();
    try {
      await this.repo.flush([id]);
    } finally {
      const left = (this.#saving.get(id) ?? 1) - 1;
      if (left <= 0) this.#saving.delete(id);
      else this.#saving.set(id, left);
      this.#emit();
    }
  }

  /** Finds a document (IndexedDB first, then the server), or undefined when unavailable. */
  async open<T>(id: DocumentId, timeoutMs = 15_000): Promise<DocHandle<T> | undefined> {
    const tracked = this.#tracked.get(id);
    if (tracked) return tracked as DocHandle<T>;
    try {
      const handle = await this.repo.find<T>(stringifyAutomergeUrl(id), { signal: AbortSignal.timeout(timeoutMs) } as any);
      this.track(handle);
      if (this.#metas[id]?.remoteOnly) this.updateMeta(id, { remoteOnly: false });
      return handle;
    } catch {
      return undefined;
    }
  }

  track(handle: DocHandle<any>) {
    const id = handle.documentId;
    if (this.#tracked.has(id)) return;
    this.#tracked.set(id, handle);
    handle.on("heads-changed", () => this.#recompute(id, handle));
    handle.on("remote-heads", ({ storageId, heads }) => {
      if (!this.#isServer(storageId)) return;
      // automerge sends empty heads while it resets a sync: never a claim of loss.
      if (!heads || heads.length === 0) return;
      this.#serverHeads.set(id, heads as string[]);
      this.#recompute(id, handle);
    });
    this.#readSyncInfo(id, handle);
    this.#recompute(id, handle);
  }

  #isServer(storageId: string) {
    return this.#serverStorageId === undefined || storageId === this.#serverStorageId;
  }

  #readSyncInfo(id: DocumentId, handle: DocHandle<any>) {
    if (!this.#serverStorageId) return;
    const info = handle.getSyncInfo(this.#serverStorageId as any);
    if (info?.lastHeads?.length) {
      this.#serverHeads.set(id, info.lastHeads as string[]);
      this.#recompute(id, handle);
    }
  }

  #recompute(id: DocumentId, handle: DocHandle<any>) {
    if (!handle.isReady()) return;
    const doc = handle.doc();
    if (!doc) return;
    this.#describe(id, doc);
    const heads = handle.heads() as string[];
    const meta = this.#metas[id];
    const server = this.#serverHeads.get(id);
    let safe = false;
    if (meta?.safeHeads && sameHeads(meta.safeHeads, heads)) safe = true;
    else if (server && covers(doc, server)) safe = true;
    if (safe) {
      if (!meta || meta.dirty || !sameHeads(meta.safeHeads ?? [], heads)) {
        this.updateMeta(id, { safeHeads: heads, safeAt: Date.now(), dirty: false });
      }
    } else if (!meta || !meta.dirty) {
      this.updateMeta(id, { dirty: true });
    }
    this.#emit();
  }

  status(id: DocumentId): Status {
    if (this.#saving.has(id)) return "saving";
    const meta = this.#metas[id];
    if (!meta) return "saved-on-phone";
    if (meta.remoteOnly) return "not-on-phone";
    if (!meta.dirty && meta.safeHeads) return "safe";
    return this.connected ? "waiting" : "saved-on-phone";
  }

  /** Loads every document in the outbox so that it syncs, opened or not. */
  async loadOutbox() {
    await Promise.all(this.outbox().map(id => this.open(id, 30_000)));
  }

  /** Waits until nothing is being written to IndexedDB. */
  async flushAll() {
    await this.repo.flush([...this.#tracked.keys()]);
  }

  // --- presence --------------------------------------------------------------

  /** Announces this user in a document and reports who else is there (ephemeral messages). */
  presence(handle: DocHandle<any>, onChange: (others: PresenceEntry[]) => void): () => void {
    const others = new Map<string, PresenceEntry>();
    const me = { type: "presence", name: this.session.user.name, peer: this.peerId };
    const announce = () => handle.broadcast({ ...me, at: Date.now() });
    const listener = ({ message }: { message: any }) => {
      if (!message || message.type !== "presence" || message.peer === this.peerId) return;
      if (message.leaving) others.delete(message.peer);
      else others.set(message.peer, { name: String(message.name), peer: String(message.peer), at: Date.now() });
      report();
    };
    const report = () => {
      const now = Date.now();
      for (const [k, v] of others) if (now - v.at > 7000) others.delete(k);
      onChange([...others.values()]);
    };
    handle.on("ephemeral-message", listener as any);
    announce();
    const timer = setInterval(() => {
      announce();
      report();
    }, 2000);
    return () => {
      clearInterval(timer);
      handle.broadcast({ ...me, leaving: true, at: Date.now() });
      handle.off("ephemeral-message", listener as any);
    };
  }

  // --- the server's list ------------------------------------------------------

  #listing: Promise<void> | undefined;

  /** When the server's list was last fetched (ms), or undefined. */
  get listedAt(): number | undefined {
    const v = Number(localStorage.getItem(LISTED_KEY));
    return v > 0 ? v : undefined;
  }

  /**
   * Fetches `GET /api/docs`, records each document's kind, relationship, owner and
   * access in the persisted index, and loads every listed document so that it syncs
   * and is kept on this device. Offline (or on any failure) the last list stands.
   */
  refreshDocs(): Promise<void> {
    this.#listing ??= this.#fetchDocs().finally(() => (this.#listing = undefined));
    return this.#listing;
  }

  async #fetchDocs() {
    let listed: Listed[];
    try {
      const response = await fetch("/api/docs", { headers: { Authorization: `Bearer ${this.session.token}` } });
      if (response.status === 401) return this.refuseToken();
      if (!response.ok) return;
      listed = (await response.json()) as Listed[];
    } catch {
      return; // offline: the last list stands
    }
    const seen = new Set<string>();
    for (const entry of listed) {
      const id = asDocumentId(entry.id);
      if (!id) continue;
      seen.add(id);
      const current = this.#metas[id];
      const rel = entry.relationship ?? undefined;
      const school = current?.school ?? this.session.relationships.find(r => r.id === rel)?.school;
      this.#metas[id] = {
        ...(current ?? { id, title: "", createdAt: entry.createdMs ?? Date.now(), remoteOnly: true }),
        kind: current?.kind && current.kind !== "unknown" ? current.kind : (entry.kind ?? "unknown"),
        relationship: current?.relationship ?? rel,
        school,
        owner: entry.owner ?? undefined,
        access: entry.access,
        listed: true,
      };
    }
    // No longer listed (access taken back): no longer known to be readable or writable.
    for (const meta of this.metas()) {
      if (meta.listed && !seen.has(meta.id)) this.#metas[meta.id] = { ...meta, listed: false, access: undefined };
    }
    localStorage.setItem(DOCS_KEY, JSON.stringify(this.#metas));
    localStorage.setItem(LISTED_KEY, String(Date.now()));
    this.#emit();
    for (const id of seen) if (!this.#tracked.has(id as DocumentId)) void this.open(id as DocumentId, 30_000);
  }

  /**
   * May this user edit the document? The server's list says; a document not (yet)
   * in it that was created here is the user's own. Anything else (a link opened
   * before the list arrived) is writable only for the members of its relationship.
   */
  access(id: DocumentId, doc?: any): Access {
    const meta = this.#metas[id];
    if (meta?.access) return meta.access;
    if (meta?.own) return "write";
    const rel = String(doc?.relationship ?? meta?.relationship ?? "");
    return rel !== "" && this.session.relationships.some(r => r.id === rel) ? "write" : "read";
  }

  /** The private notes (this user's) on an observation, linked by their `observation` URL. */
  privateNotesOf(observation: DocumentId): DocumentId | undefined {
    return this.metas().find(m => m.kind === "observation-private-notes" && m.observation === observation)?.id;
  }

  /** Keeps what the lists show (kind, title, school, the notes' observation) in step with the document. */
  #describe(id: DocumentId, doc: any) {
    const meta = this.#metas[id];
    const text = (v: unknown) => (v === undefined || v === null ? "" : String(v));
    const kind = text(doc.schema) || meta?.kind || "unknown";
    const patch: Partial<DocMeta> = { kind };
    const title = describeTitle(kind, doc);
    if (title) patch.title = title;
    const rel = text(doc.relationship);
    if (rel) patch.relationship = rel;
    const school = text(doc.school) || this.session.relationships.find(r => r.id === rel)?.school;
    if (school) patch.school = school;
    if (kind === "observation") {
      patch.draft = text(doc.status) !== "shared";
      patch.observer = text(doc.observer);
    }
    if (kind === "observation-private-notes") {
      const url = text(doc.observation);
      const target = asDocumentId(url.replace(/^automerge:/, ""));
      if (target) patch.observation = target;
    }
    if (meta && Object.entries(patch).every(([k, v]) => (meta as any)[k] === v)) return;
    this.#metas[id] = { ...(meta ?? { id, title: "", createdAt: Date.now() }), ...patch } as DocMeta;
    localStorage.setItem(DOCS_KEY, JSON.stringify(this.#metas));
    this.#emit();
  }
}

function describeTitle(kind: string, doc: any): string {
  const text = (v: unknown) => (v === undefined || v === null ? "" : String(v));
  switch (kind) {
    case "rubric-self-assessment":
      return text(doc.leader) && `Self-assessment: ${text(doc.leader)}`;
    case "coaching-log":
      return text(doc.coach) && `Coaching log: ${text(doc.coach)} and ${text(doc.client)}`;
    case "observation-private-notes":
      return "";
    default:
      return text(doc.title);
  }
}

let wasmReady: Promise<void> | undefined;
export function initAutomerge(): Promise<void> {
  wasmReady ??= fetch(automergeWasmUrl)
    .then(r => r.arrayBuffer())
    .then(bytes => initializeWasm(new Uint8Array(bytes)));
  return wasmReady;
}

// --- helpers -----------------------------------------------------------------

function readJson<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(key);
    return raw ? (JSON.parse(raw) as T) : fallback;
  } catch {
    return fallback;
  }
}

export function sameHeads(a: readonly string[], b: readonly string[]) {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every(h => s.has(h));
}

/** True when every change of `doc` is an ancestor of the server's heads (encoded). */
export function covers(doc: A.Doc<unknown>, serverHeads: string[]): boolean {
  const local = A.getHeads(doc);
  const known = decodeHeads(serverHeads as any).filter(h => A.hasHeads(doc, [h]));
  if (local.every(h => known.includes(h))) return true;
  if (known.length === 0) return false;
  return A.getChangesSince(doc, known).length === 0;
}

export const asDocumentId = (s: string): DocumentId | undefined => {
  try {
    return interpretAsDocumentId(s as any);
  } catch {
    return undefined;
  }
};

export const uid = (prefix: string) => `${prefix}-${crypto.getRandomValues(new Uint32Array(2)).reduce((s, n) => s + n.toString(36), "")}`;
