// The signed-in user on this device: the device token from an invite, the user's
// profile and the relationships the server says they belong to. Kept in
// localStorage (synchronous, so a reload always sees it) under `cs:`.

export interface User {
  name: string;
  role: string;
  org?: string;
  groups?: string[];
}

export interface Relationship {
  id: string;
  school: string;
  coaches: string[];
  clients: string[];
  focus?: string;
  start?: number;
  endedMs?: number | null;
}

export interface Session {
  token: string;
  user: User;
  relationships: Relationship[];
  signedInAt: number;
}

const KEY = "cs:session";

export function loadSession(): Session | undefined {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : undefined;
  } catch {
    return undefined;
  }
}

export function saveSession(session: Session) {
  localStorage.setItem(KEY, JSON.stringify(session));
}

export class InviteError extends Error {}

/** Exchanges a one-time invite code for a device token (once: the server refuses a reuse). */
export async function redeemInvite(code: string): Promise<Session> {
  let response: Response;
  try {
    response = await fetch(`/api/invites/${encodeURIComponent(code)}`, { method: "POST" });
  } catch {
    throw new InviteError("This phone is offline. Open the invite link again when you have a connection: it works only once, online.");
  }
  if (response.status === 410) {
    throw new InviteError("This invite link has already been used or has expired. Ask whoever invited you for a new link.");
  }
  if (response.status === 404) {
    throw new InviteError("This invite link is not valid. Check that you opened the whole link, or ask for a new one.");
  }
  if (!response.ok) {
    throw new InviteError(`The server could not sign you in (HTTP ${response.status}). Try the link again later.`);
  }
  const body = (await response.json()) as { token: string; user: User };
  const session: Session = { token: body.token, user: body.user, relationships: [], signedInAt: Date.now() };
  saveSession(session);
  await refreshProfile(session).catch(() => undefined);
  return loadSession() ?? session;
}

/** Re-reads `/api/me` (relationships change on the server); keeps the cached copy offline. */
export async function refreshProfile(session: Session): Promise<Session> {
  const response = await fetch("/api/me", { headers: { Authorization: `Bearer ${session.token}` } });
  if (response.status === 401) throw new Error("unauthorized");
  if (!response.ok) throw new Error(`GET /api/me: HTTP ${response.status}`);
  const me = (await response.json()) as User & { relationships?: Relationship[] };
  const updated: Session = {
    ...session,
    user: { name: me.name, role: me.role, org: me.org, groups: me.groups ?? [] },
    relationships: me.relationships ?? [],
  };
  saveSession(updated);
  return updated;
}

/** Shares a document with another user by name (the server decides whether this user may). */
export async function grant(session: Session, documentId: string, user: string, access: "read" | "write") {
  const response = await fetch(`/api/docs/${encodeURIComponent(documentId)}/grants`, {
    method: "POST",
    headers: { Authorization: `Bearer ${session.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ user, access }),
  });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try {
      message = ((await response.json()) as { error?: string }).error ?? message;
    } catch {
      /* keep the status */
    }
    throw new Error(message);
  }
}

const WIPE_FLAG = "cs:wipe";

/**
 * Sign-out, step 1: mark the wipe and reload, so that nothing holds the IndexedDB
 * databases open when they are deleted (a delete waits for every open connection).
 */
export function requestSignOut() {
  sessionStorage.setItem(WIPE_FLAG, "1");
  location.hash = "#/";
  location.reload();
}

/** Sign-out, step 2, at boot before anything opens: delete every local copy. */
export async function wipeIfRequested(): Promise<boolean> {
  if (sessionStorage.getItem(WIPE_FLAG) !== "1") return false;
  await wipeEverything();
  sessionStorage.removeItem(WIPE_FLAG);
  sessionStorage.setItem("cs:signed-out", "1");
  return true;
}

export async function wipeEverything() {
  localStorage.clear();
  if ("databases" in indexedDB) {
    const dbs = await indexedDB.databases();
    await Promise.all(
      dbs.map(
        db =>
          new Promise<void>(resolve => {
            if (!db.name) return resolve();
            const req = indexedDB.deleteDatabase(db.name);
            req.onsuccess = req.onerror = req.onblocked = () => resolve();
          }),
      ),
    );
  }
  if ("caches" in self) {
    for (const key of await caches.keys()) await caches.delete(key);
  }
}
