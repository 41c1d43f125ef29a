import { useErrorBoundary, useEffect, useRef, useState } from "preact/hooks";
import { KIND_LABEL, newCoachingLog, newPdsaCycle, newSelfAssessment, newWorkPlan } from "./domain";
import { CaptureScreen, NewWalkthrough } from "./screens/capture";
import { CoachingLogScreen } from "./screens/log";
import { PdsaScreen } from "./screens/pdsa";
import { SelfAssessmentScreen } from "./screens/selfassessment";
import { WorkPlanScreen } from "./screens/workplan";
import { InviteError, type Relationship, redeemInvite, refreshProfile, requestSignOut, type Session } from "./session";
import { asDocumentId, type Device, type DocumentId } from "./sync";
import { DeviceContext, Field, Page, StatusBadge, fmtDate, useDevice, useDeviceTick, useDoc } from "./ui";

export function useHash() {
  const [hash, setHash] = useState(location.hash || "#/");
  useEffect(() => {
    const on = () => setHash(location.hash || "#/");
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

export function go(hash: string) {
  location.hash = hash;
}

/** Moves focus to the new page's heading, so screen readers announce it. */
function useFocusOnRoute(hash: string) {
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    setTimeout(() => document.getElementById("page-title")?.focus(), 0);
  }, [hash]);
}

export function SignedOutApp({ hash, onSignedIn }: { hash: string; onSignedIn: (s: Session) => void }) {
  const invite = /^#\/invite\/([^/?#]+)/.exec(hash);
  if (invite) return <InviteScreen code={decodeURIComponent(invite[1])} onSignedIn={onSignedIn} />;
  const signedOut = sessionStorage.getItem("cs:signed-out") === "1";
  return (
    <main id="main" class="narrow">
      <Page title="Welcome to coachsync">
        {signedOut && (
          <p class="notice" role="status">
            You are signed out. Nothing of yours is left on this device.
          </p>
        )}
        <p>Walkthroughs, work plans and coaching logs, on your phone, with or without signal.</p>
        <p>To sign in, open the invite link you were sent on this device. The link works once.</p>
      </Page>
    </main>
  );
}

function InviteScreen({ code, onSignedIn }: { code: string; onSignedIn: (s: Session) => void }) {
  const [error, setError] = useState<string>();
  const started = useRef(false);
  useEffect(() => {
    if (started.current) return;
    started.current = true;
    redeemInvite(code)
      .then(session => {
        location.replace("#/"); // the one-time code leaves the address bar and history
        onSignedIn(session);
      })
      .catch(e => setError(e instanceof InviteError ? e.message : `Could not sign in: ${e.message}`));
  }, [code]);
  return (
    <main id="main" class="narrow">
      <Page title="Signing in">
        {error ? (
          <p class="error" role="alert" data-testid="invite-error">
            {error}
          </p>
        ) : (
          <p role="status">Checking your invite link…</p>
        )}
      </Page>
    </main>
  );
}

export function SignedInApp({ device, hash }: { device: Device; hash: string }) {
  useFocusOnRoute(hash);
  return (
    <DeviceContext.Provider value={device}>
      <Header />
      <main id="main">
        <Boundary key={hash}>
          <Route hash={hash} />
        </Boundary>
      </main>
    </DeviceContext.Provider>
  );
}

/**
 * A screen that fails to render shows why instead of freezing the app (an
 * uncaught render error would stop Preact from rendering anything again).
 */
function Boundary({ children }: { children: any }) {
  const [error, reset] = useErrorBoundary(e => console.error("coachsync: a screen failed", e));
  if (error)
    return (
      <Page title="Something went wrong">
        <p class="error" role="alert" data-testid="screen-error">
          This screen failed: {String((error as Error)?.message ?? error)}. Your documents are safe on this phone.
        </p>
        <button type="button" onClick={reset}>
          Try again
        </button>
      </Page>
    );
  return children;
}

function Header() {
  const device = useDeviceTick();
  const online = device.connected;
  return (
    <header class="top">
      <a class="skip" href="#main" onClick={e => (e.preventDefault(), document.getElementById("main")?.focus())}>
        Skip to content
      </a>
      <a class="brand" href="#/">
        coachsync
      </a>
      <span class={`conn ${online ? "on" : "off"}`} data-testid="connection" role="status">
        {online ? "Online" : "Offline: saving on this phone"}
      </span>
      <a class="user" href="#/account" data-testid="user-name" aria-label={`Account: ${device.session.user.name}`}>
        {device.session.user.name}
      </a>
      {device.tokenRefused && (
        <p class="banner" role="alert" data-testid="token-refused">
          The server no longer accepts this device's sign-in. Your changes stay on this phone; ask for a new invite link, and sign out only once they are safe elsewhere.
        </p>
      )}
    </header>
  );
}

function Route({ hash }: { hash: string }) {
  const path = hash.replace(/^#/, "");
  let m: RegExpExecArray | null;
  if ((m = /^\/doc\/([^/]+)/.exec(path))) return <DocScreen id={decodeURIComponent(m[1])} />;
  if (path === "/new/walkthrough") return <NewWalkthrough />;
  if ((m = /^\/new\/([a-z-]+)/.exec(path))) return <NewDocument kind={m[1]} />;
  if (path === "/account") return <Account />;
  if (path.startsWith("/invite/")) return <AlreadySignedIn />;
  return <Home />;
}

function AlreadySignedIn() {
  const device = useDevice();
  return (
    <Page title="Already signed in">
      <p>
        This device is signed in as <strong>{device.session.user.name}</strong>. To use an invite for someone else, sign out first.
      </p>
      <a href="#/">Go to my documents</a>
    </Page>
  );
}

function DocScreen({ id }: { id: string }) {
  const device = useDeviceTick();
  const docId = asDocumentId(id.replace(/^automerge:/, ""));
  const loaded = useDoc(docId);
  // Opened through a link before the server's list named it: ask for the list again.
  const unlisted = !!docId && loaded.state === "ready" && !device.meta(docId)?.listed && !device.meta(docId)?.own;
  useEffect(() => {
    if (unlisted) void device.refreshDocs();
  }, [unlisted]);
  if (!docId || loaded.state === "missing")
    return (
      <Page title="Not available" back="#/">
        <p data-testid="doc-missing">This document is not available to you, or it is not on this device and the server is out of reach.</p>
      </Page>
    );
  if (loaded.state === "loading")
    return (
      <Page title="Opening…" back="#/">
        <p role="status">Opening the document…</p>
      </Page>
    );
  const kind = String((loaded.doc as any)?.schema ?? "");
  const props = { id: docId, handle: loaded.handle, doc: loaded.doc as any };
  // The server's list of documents says whether this user may edit it; a document
  // not (yet) in the list that was made on this device is the user's own.
  const readOnly = device.access(docId, loaded.doc) === "read";
  if (readOnly)
    return (
      <>
        <p class="notice" role="note" data-testid="read-only">
          Shared with you to read only: the server does not accept your edits to it.
        </p>
        <fieldset disabled class="readonly">
          <legend class="visually-hidden">Read-only document</legend>
          <KindScreen kind={kind} {...props} />
        </fieldset>
      </>
    );
  return <KindScreen kind={kind} {...props} />;
}

function KindScreen({ kind, ...props }: { kind: string; id: DocumentId; handle: any; doc: any }) {
  switch (kind) {
    case "observation":
      return <CaptureScreen {...props} />;
    case "work-plan":
      return <WorkPlanScreen {...props} />;
    case "rubric-self-assessment":
      return <SelfAssessmentScreen {...props} />;
    case "coaching-log":
      return <CoachingLogScreen {...props} />;
    case "pdsa-cycle":
      return <PdsaScreen {...props} />;
    default:
      return (
        <Page title="Document" back="#/">
          <StatusBadge id={props.id} />
          <pre class="raw">{JSON.stringify(props.doc, null, 2)}</pre>
        </Page>
      );
  }
}

const NEW_KINDS: Array<[string, string]> = [
  ["walkthrough", "New walkthrough"],
  ["work-plan", "New work plan"],
  ["rubric-self-assessment", "New self-assessment"],
  ["coaching-log", "New coaching log"],
  ["pdsa-cycle", "New PDSA cycle"],
];

function Home() {
  const device = useDeviceTick();
  // Whenever the list is shown, and every 10 s while it is, ask the server for the
  // documents this user may read (the server announces none).
  useEffect(() => {
    void device.refreshDocs();
    const timer = setInterval(() => {
      if (device.connected && document.visibilityState === "visible") void device.refreshDocs();
    }, 10_000);
    return () => clearInterval(timer);
  }, [device]);
  const me = device.session.user.name;
  // Private notes show beside their observation; someone else's draft stays out of the
  // list (the server lets the relationship read it, the app waits until it is shared).
  const metas = device
    .metas()
    .filter(m => m.kind !== "coaching-relationship" && m.kind !== "observation-private-notes" && m.kind !== "unknown")
    .filter(m => !(m.kind === "observation" && m.draft && m.observer && m.observer !== me));
  const byKind = new Map<string, typeof metas>();
  for (const m of metas.sort((a, b) => b.createdAt - a.createdAt)) {
    const list = byKind.get(m.kind) ?? [];
    list.push(m);
    byKind.set(m.kind, list);
  }
  const waiting = device.outbox().length;
  return (
    <Page title="My documents">
      <nav aria-label="Create" class="new-buttons">
        {NEW_KINDS.map(([kind, label]) => (
          <a class="button" href={`#/new/${kind}`} key={kind}>
            {label}
          </a>
        ))}
      </nav>
      <p class="summary" data-testid="outbox-summary">
        {waiting === 0 ? "Everything on this phone is safe on the server." : `${waiting} document${waiting === 1 ? "" : "s"} not yet safe on the server.`}
      </p>
      {metas.length === 0 && <p>No documents yet.</p>}
      {[...byKind].map(([kind, list]) => (
        <section key={kind} aria-labelledby={`kind-${kind}`}>
          <h2 id={`kind-${kind}`}>{KIND_LABEL[kind] ?? kind}</h2>
          {[...new Set(list.map(m => m.school ?? ""))].sort().map(school => (
            <div key={school} class="school-group">
              {school && <h3 class="school">{school}</h3>}
              <ul class="doc-list">
                {list
                  .filter(m => (m.school ?? "") === school)
                  .map(m => (
                    <li key={m.id} data-doc-id={m.id} data-kind={m.kind}>
                      <a href={`#/doc/${m.id}`}>{m.title || "(untitled)"}</a>
                      <span class="meta">{fmtDate(m.createdAt)}</span>
                      <StatusBadge id={m.id} />
                    </li>
                  ))}
              </ul>
            </div>
          ))}
        </section>
      ))}
    </Page>
  );
}

function relationshipLabel(r: Relationship) {
  return `${r.school}: ${[...r.coaches, ...r.clients].join(", ")}`;
}

export function RelationshipPicker({ value, onChange }: { value: string; onChange: (v: string) => void }) {
  const device = useDevice();
  const rels = device.session.relationships;
  return (
    <Field label="Coaching relationship" hint="Its members (coach and client) can read and edit the document; nobody else.">
      {id => (
        <select id={id} value={value} onChange={e => onChange((e.target as HTMLSelectElement).value)} data-testid="relationship">
          {rels.map(r => (
            <option key={r.id} value={r.id}>
              {relationshipLabel(r)}
            </option>
          ))}
          <option value="">None: only me</option>
        </select>
      )}
    </Field>
  );
}

function NewDocument({ kind }: { kind: string }) {
  const device = useDevice();
  const me = device.session.user;
  const rels = device.session.relationships;
  const [rel, setRel] = useState(rels[0]?.id ?? "");
  const [title, setTitle] = useState("");
  const relationship = rels.find(r => r.id === rel);
  const coaching = kind !== "pdsa-cycle";
  const titles: Record<string, string> = {
    "work-plan": "New work plan",
    "rubric-self-assessment": "New self-assessment",
    "coaching-log": "New coaching log",
    "pdsa-cycle": "New PDSA cycle",
  };
  if (!titles[kind]) return <Home />;
  const create = async (e: Event) => {
    e.preventDefault();
    const coach = relationship?.coaches[0] ?? me.name;
    const client = relationship?.clients[0] ?? me.name;
    const school = relationship?.school;
    let initial: Record<string, unknown>;
    let docTitle = title.trim();
    if (kind === "work-plan") {
      docTitle ||= `Work plan${school ? `, ${school}` : ""}`;
      initial = newWorkPlan({ title: docTitle, client, coach, school, relationship: relationship?.id });
    } else if (kind === "rubric-self-assessment") {
      docTitle ||= `Self-assessment: ${client}`;
      initial = newSelfAssessment({ leader: client, relationship: relationship?.id });
    } else if (kind === "coaching-log") {
      docTitle ||= `Coaching log: ${coach} and ${client}`;
      initial = newCoachingLog({ coach, client, relationship: relationship?.id });
    } else {
      docTitle ||= "PDSA cycle";
      initial = newPdsaCycle({ title: docTitle, group: me.groups?.[0] });
    }
    const handle = await device.create(initial, { kind, title: docTitle, school: coaching ? school : undefined, relationship: coaching ? relationship?.id : undefined });
    go(`#/doc/${handle.documentId}`);
  };
  return (
    <Page title={titles[kind]} back="#/">
      <form onSubmit={create}>
        <Field label="Title" hint="Leave empty for a default title.">
          {id => <input id={id} type="text" value={title} onInput={e => setTitle((e.target as HTMLInputElement).value)} />}
        </Field>
        {coaching ? (
          <RelationshipPicker value={rel} onChange={setRel} />
        ) : (
          <p class="hint">{me.groups?.[0] ? `Shared with your team (${me.groups[0]}).` : "You are in no team yet: only you can read it."}</p>
        )}
        <button type="submit" class="primary">
          Create
        </button>
      </form>
    </Page>
  );
}

function Account() {
  const device = useDeviceTick();
  const dialog = useRef<HTMLDialogElement>(null);
  const [refreshing, setRefreshing] = useState<string>();
  const user = device.session.user;
  const unsynced = device.outbox();
  const signOut = () => {
    if (unsynced.length > 0) dialog.current?.showModal();
    else requestSignOut();
  };
  const refresh = async () => {
    try {
      await refreshProfile(device.session);
      setRefreshing("Updated. Reload to use the new relationships.");
    } catch (e: any) {
      setRefreshing(`Could not update: ${e.message}`);
    }
  };
  return (
    <Page title="Account" back="#/">
      <dl class="facts">
        <dt>Name</dt>
        <dd data-testid="account-name">{user.name}</dd>
        <dt>Role</dt>
        <dd>{user.role}</dd>
        {user.org && (
          <>
            <dt>Organisation</dt>
            <dd>{user.org}</dd>
          </>
        )}
        <dt>Coaching relationships</dt>
        <dd>{device.session.relationships.length ? device.session.relationships.map(relationshipLabel).join("; ") : "none"}</dd>
      </dl>
      <button type="button" onClick={refresh}>
        Update my relationships
      </button>
      {refreshing && <p role="status">{refreshing}</p>}
      <h2>Sign out</h2>
      <p>Signing out deletes every document, the app's saved copy and your sign-in from this device.</p>
      <button type="button" class="danger" onClick={signOut} data-testid="sign-out">
        Sign out and delete local data
      </button>
      <dialog ref={dialog} aria-labelledby="signout-title" aria-describedby="signout-desc">
        <h2 id="signout-title">Changes not yet on the server</h2>
        <p id="signout-desc" data-testid="signout-warning">
          {unsynced.length} document{unsynced.length === 1 ? " has" : "s have"} changes that are only on this phone. Signing out now deletes them for good.
        </p>
        <div class="row">
          <button type="button" onClick={() => dialog.current?.close()} autoFocus>
            Keep them, stay signed in
          </button>
          <button type="button" class="danger" onClick={requestSignOut} data-testid="sign-out-anyway">
            Delete them and sign out
          </button>
        </div>
      </dialog>
    </Page>
  );
}

export type { DocumentId };
