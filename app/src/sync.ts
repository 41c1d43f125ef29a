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
import type { Relationship, Session } from "./session";

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

/** What the device keeps about each document it knows (persisted in localStorage). */
export interface DocMeta {
  id: DocumentId;
  kind: string;
  title: string;
  school?: string;
  relationship?: string;
  createdAt: number;
  /** For an observation created here: its private notes' document ID. */
  privateNotes?: DocumentId;
  /** For private notes: the observation's ID. */
  observation?: DocumentId;
  /** Heads (encoded) at which the server last covered every local change. */
  safeHeads?: string[];
  safeAt?: number;
  /** Has local changes the server has not acknowledged: in the outbox. */
  dirty?: boolean;
  /** Known from a relationship's index only: never loaded on this device. */
  remoteOnly?: boolean;
  /** Listed in the relationship's shared index already. */
  indexed?: boolean;
  /** To be listed in the relationship's shared index (kept until it is). */
  publish?: boolean;
}

const DOCS_KEY = "cs:docs";
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
    });
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
    this.updateMeta(handle.documentId, { ...meta, createdAt: Date.now(), dirty: true });
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

  // --- relationship indexes --------------------------------------------------

  /**
   * Each coaching relationship has one `coaching-relationship` document whose ID
   * and first change are derived from the relationship's ID, so both members create
   * the very same change (same hash) and never two rival documents. Besides the
   * kind's fields it keeps `documents`: the documents its members have shared in
   * the relationship, so that the other member's device can list them.
   */
  async relationshipIndex(rel: Relationship): Promise<DocHandle<any> | undefined> {
    const id = await relationshipDocId(rel.id);
    const known = this.#metas[id];
    let handle: DocHandle<any> | undefined;
    if (known && !known.remoteOnly) {
      handle = await this.open(id, 10_000);
    } else {
      const actor = (await sha256Hex(`coachsync:relationship-actor:${rel.id}`)).slice(0, 32);
      let doc = A.init<any>({ actor: actor as any });
      doc = A.change(doc, { time: 0 }, (d: any) => {
        d.schema = "coaching-relationship";
        d.schemaVersion = 1;
        d.relationship = new A.ImmutableString(rel.id);
        d.agreement = { text: "", agreedBy: [] };
        d.documents = {};
      });
      handle = this.repo.import<any>(A.save(doc), { docId: id });
      (handle as any).doneLoading?.();
      this.updateMeta(id, { kind: "coaching-relationship", title: `Relationship at ${rel.school}`, school: rel.school, relationship: rel.id, createdAt: Date.now(), dirty: true });
      this.track(handle);
      await this.save(handle);
    }
    return handle;
  }

  /**
   * Lists a document in its relationship's shared index. The intent is written
   * first (synchronously), so a page closed half-way publishes at the next start.
   */
  async publishToRelationship(rel: Relationship, id: DocumentId, entry: { kind: string; title: string; school?: string }) {
    this.updateMeta(id, { publish: true, relationship: rel.id });
    const index = await this.relationshipIndex(rel);
    if (!index) return;
    await this.change(index, (d: any) => {
      if (!d.documents) d.documents = {};
      d.documents[id] = {
        kind: new A.ImmutableString(entry.kind),
        title: new A.ImmutableString(entry.title),
        school: new A.ImmutableString(entry.school ?? rel.school),
        by: new A.ImmutableString(this.session.user.name),
        at: Date.now(),
      };
    });
    this.updateMeta(id, { indexed: true, publish: false });
  }

  /** Publishes what an earlier session meant to publish and did not finish. */
  async publishPending() {
    for (const meta of this.metas()) {
      if (!meta.publish || meta.indexed) continue;
      const rel = this.session.relationships.find(r => r.id === meta.relationship);
      if (rel) await this.publishToRelationship(rel, meta.id, { kind: meta.kind, title: meta.title, school: meta.school });
    }
  }

  /** Reads every relationship's index and lists the documents it names. */
  async syncRelationshipIndexes(): Promise<() => void> {
    const offs: Array<() => void> = [];
    for (const rel of this.session.relationships) {
      const index = await this.relationshipIndex(rel);
      if (!index) continue;
      const read = () => {
        const docs = index.doc()?.documents ?? {};
        for (const [docId, entry] of Object.entries<any>(docs)) {
          if (this.#metas[docId]) continue;
          this.updateMeta(docId as DocumentId, {
            kind: String(entry.kind),
            title: String(entry.title),
            school: String(entry.school ?? rel.school),
            relationship: rel.id,
            createdAt: Number(entry.at) || Date.now(),
            remoteOnly: true,
          });
        }
      };
      read();
      index.on("change", read);
      offs.push(() => index.off("change", read));
    }
    return () => offs.forEach(f => f());
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

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, "0")).join("");
}

export async function relationshipDocId(rel: string): Promise<DocumentId> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`coachsync:relationship-index:${rel}`)));
  return interpretAsDocumentId(digest.slice(0, 16) as any);
}

export const asDocumentId = (s: string): DocumentId | undefined => {
  try {
    return interpretAsDocumentId(s as any);
  } catch {
    return undefined;
  }
};

export const uid = (prefix: string) => `${prefix}-${crypto.getRandomValues(new Uint32Array(2)).reduce((s, n) => s + n.toString(36), "")}`;
