// Walkthrough capture: an observation (coaching: shared with the relationship's
// members once finished) and, beside it, the observer's private notes (a separate
// document the server lets only its author read).

import { useState } from "preact/hooks";
import { go } from "../app";
import { SETTINGS, TEMPLATES, type LookFor, newObservation, newPrivateNotes, str, templateOf, uid } from "../domain";
import { A, type DocHandle, type DocumentId } from "../sync";
import { Field, Page, StatusBadge, TextField, fmtTime, useDevice, useDeviceTick, useDoc } from "../ui";
import { ShareBox } from "./share";

export function NewWalkthrough() {
  const device = useDevice();
  const rels = device.session.relationships;
  const [rel, setRel] = useState(rels[0]?.id ?? "");
  const relationship = rels.find(r => r.id === rel);
  const [school, setSchool] = useState(relationship?.school ?? "");
  const [setting, setSetting] = useState<string>("classroom");
  const [templateId, setTemplateId] = useState(TEMPLATES.find(t => t.setting === "classroom")?.id ?? TEMPLATES[0].id);
  const [title, setTitle] = useState("");
  const [busy, setBusy] = useState(false);
  const schools = [...new Set(rels.map(r => r.school))];

  const onSetting = (v: string) => {
    setSetting(v);
    const match = TEMPLATES.find(t => t.setting === v) ?? TEMPLATES[TEMPLATES.length - 1];
    setTemplateId(match.id);
  };
  const onRel = (v: string) => {
    setRel(v);
    const r = rels.find(x => x.id === v);
    if (r) setSchool(r.school);
  };
  const start = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    const template = TEMPLATES.find(t => t.id === templateId) ?? TEMPLATES[0];
    const docTitle = title.trim() || `${setting[0].toUpperCase()}${setting.slice(1)} walkthrough${school ? `, ${school}` : ""}`;
    const obs = await device.create(
      newObservation({ title: docTitle, observer: device.session.user.name, setting, school: school || undefined, template, relationship: relationship?.id }),
      { kind: "observation", title: docTitle, school: school || undefined, relationship: relationship?.id },
    );
    await device.create(newPrivateNotes(obs.url), { kind: "observation-private-notes", title: `Private notes: ${docTitle}`, observation: obs.documentId });
    go(`#/doc/${obs.documentId}`);
  };
  return (
    <Page title="New walkthrough" back="#/">
      <form onSubmit={start}>
        <Field label="Coaching relationship" hint="The observation is shared with its members when you finish it.">
          {id => (
            <select id={id} value={rel} onChange={e => onRel((e.target as HTMLSelectElement).value)} data-testid="relationship">
              {rels.map(r => (
                <option key={r.id} value={r.id}>
                  {r.school}: {[...r.coaches, ...r.clients].join(", ")}
                </option>
              ))}
              <option value="">None: only me</option>
            </select>
          )}
        </Field>
        <Field label="School">
          {id => (
            <>
              <input id={id} type="text" list={`${id}-list`} value={school} onInput={e => setSchool((e.target as HTMLInputElement).value)} data-testid="school" />
              <datalist id={`${id}-list`}>
                {schools.map(s => (
                  <option key={s} value={s} />
                ))}
              </datalist>
            </>
          )}
        </Field>
        <fieldset class="choices">
          <legend>Setting</legend>
          {SETTINGS.map(s => (
            <label key={s} class="choice">
              <input type="radio" name="setting" value={s} checked={setting === s} onChange={() => onSetting(s)} />
              {s}
            </label>
          ))}
        </fieldset>
        <Field label="Observation template">
          {id => (
            <select id={id} value={templateId} onChange={e => setTemplateId((e.target as HTMLSelectElement).value)} data-testid="template">
              {TEMPLATES.map(t => (
                <option key={t.id} value={t.id}>
                  {t.name} ({t.lookFors.length} look-fors)
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Title" hint="Optional, such as “Room 12, grade 3 math”.">
          {id => <input id={id} type="text" value={title} onInput={e => setTitle((e.target as HTMLInputElement).value)} data-testid="title" />}
        </Field>
        <button type="submit" class="primary" disabled={busy} data-testid="start-walkthrough">
          Start walkthrough
        </button>
      </form>
    </Page>
  );
}

export function CaptureScreen({ id, handle, doc }: { id: DocumentId; handle: DocHandle<any>; doc: any }) {
  const device = useDeviceTick();
  // This user's private notes on it, found by their `observation` URL (the server
  // lists them to their author on every device).
  const privateNotes = device.privateNotesOf(id);
  const template = templateOf(doc.template);
  const mine = str(doc.observer) === device.session.user.name;
  const shared = str(doc.status) === "shared";
  const finish = async () => {
    await device.change(handle, d => {
      d.status = new A.ImmutableString("shared");
      d.endedAt = Date.now();
    });
  };
  return (
    <Page title={str(doc.title) || "Walkthrough"} back="#/">
      <p class="doc-facts">
        <StatusBadge id={id} /> <span data-testid="obs-status">{shared ? "Shared with the relationship" : "Draft: only you see it in your list"}</span>
      </p>
      <p class="meta">
        {[str(doc.school), str(doc.setting), template?.name, str(doc.observer) && `observed by ${str(doc.observer)}`].filter(Boolean).join(" · ")}
      </p>
      <TextField handle={handle} doc={doc} path={["title"]} label="Title" testId="obs-title" />
      <TextField handle={handle} doc={doc} path={["context"]} label="Context" hint="Grade, subject, who was present, what the lesson or meeting was for." multiline testId="obs-context" />

      <Observed handle={handle} doc={doc} />

      {template && template.lookFors.length > 0 && (
        <section aria-labelledby="lookfors-h">
          <h2 id="lookfors-h">Look-fors</h2>
          {template.lookFors.map(lf => (
            <LookForInput key={lf.id} lf={lf} handle={handle} doc={doc} />
          ))}
        </section>
      )}

      <Script handle={handle} doc={doc} />

      <TextField handle={handle} doc={doc} path={["nextStep"]} label="Agreed next step" multiline testId="obs-next-step" />

      {mine && privateNotes ? (
        <PrivateNotes id={privateNotes} />
      ) : (
        <p class="hint" data-testid="private-notes-absent">
          Private notes on this walkthrough, if any, are the observer's alone and are not shown here.
        </p>
      )}

      {!shared && mine && (
        <button type="button" class="primary" onClick={finish} data-testid="finish">
          Finish and share with the relationship
        </button>
      )}
      {shared && <ShareBox id={id} />}
    </Page>
  );
}

function LookForInput({ lf, handle, doc }: { lf: LookFor; handle: DocHandle<any>; doc: any }) {
  const device = useDevice();
  const response = str(doc.lookFors?.[lf.id]?.response);
  const set = (value: string) =>
    device.change(handle, d => {
      if (!d.lookFors) d.lookFors = {};
      if (!d.lookFors[lf.id]) d.lookFors[lf.id] = {};
      d.lookFors[lf.id].response = new A.ImmutableString(value);
    });
  const groupId = `lf-${lf.id}`;
  return (
    <div class="lookfor" data-lookfor={lf.id}>
      {lf.responseType === "yes-no" || lf.responseType === "scale" ? (
        <div role="group" aria-labelledby={groupId}>
          <p id={groupId} class="prompt">
            {lf.prompt}
          </p>
          <div class="taps">
            {(lf.responseType === "yes-no" ? [["yes", "Yes"], ["no", "No"]] : (lf.scale ?? []).map((label, i) => [String(i + 1), label])).map(([value, label]) => (
              <button type="button" key={value} aria-pressed={response === value} class="tap" onClick={() => set(value)} data-value={value}>
                {label}
              </button>
            ))}
          </div>
        </div>
      ) : lf.responseType === "count" ? (
        <div role="group" aria-labelledby={groupId}>
          <p id={groupId} class="prompt">
            {lf.prompt}
          </p>
          <div class="taps">
            <button type="button" class="tap" aria-label={`Decrease count: ${lf.prompt}`} onClick={() => set(String(Math.max(0, (Number(response) || 0) - 1)))}>
              −
            </button>
            <output class="count" aria-live="polite" data-testid={`count-${lf.id}`}>
              {response || "0"}
            </output>
            <button type="button" class="tap" aria-label={`Increase count: ${lf.prompt}`} onClick={() => set(String((Number(response) || 0) + 1))} data-testid={`inc-${lf.id}`}>
              +
            </button>
          </div>
        </div>
      ) : (
        <Field label={lf.prompt}>
          {id => <input id={id} type="text" value={response} onInput={e => set((e.target as HTMLInputElement).value)} />}
        </Field>
      )}
    </div>
  );
}

function Script({ handle, doc }: { handle: DocHandle<any>; doc: any }) {
  const device = useDevice();
  const [text, setText] = useState("");
  const add = async (e: Event) => {
    e.preventDefault();
    const value = text.trim();
    if (!value) return;
    setText("");
    await device.change(handle, d => {
      d.script.push({ id: uid("s"), at: Date.now(), text: value, tags: [] });
    });
  };
  const entries: any[] = doc.script ?? [];
  return (
    <section aria-labelledby="script-h">
      <h2 id="script-h">Timestamped notes</h2>
      <ol class="script" data-testid="script">
        {entries.map((entry, i) => (
          <li key={str(entry.id) || i}>
            <time dateTime={new Date(entry.at).toISOString()}>{fmtTime(entry.at)}</time> <span>{str(entry.text)}</span>
          </li>
        ))}
      </ol>
      <form onSubmit={add} class="row">
        <Field label="New note">
          {id => <input id={id} type="text" value={text} onInput={e => setText((e.target as HTMLInputElement).value)} data-testid="note-input" />}
        </Field>
        <button type="submit" data-testid="add-note">
          Add note
        </button>
      </form>
    </section>
  );
}

function PrivateNotes({ id }: { id: DocumentId }) {
  const device = useDevice();
  const loaded = useDoc(id);
  return (
    <section class="private" aria-labelledby="private-h" data-private-notes-id={id}>
      <h2 id="private-h">
        Private notes <span class="lock">only you</span>
      </h2>
      <p class="hint" data-testid="private-audience">
        Only you ({device.session.user.name}) can read these. They are a separate document that is never shared with the relationship, a supervisor or an administrator.
      </p>
      {loaded.state === "ready" ? (
        <>
          <StatusBadge id={id} />
          <TextField handle={loaded.handle} doc={loaded.doc} path={["notes"]} label="Private notes" multiline testId="private-notes" />
        </>
      ) : (
        <p role="status">Opening your private notes…</p>
      )}
    </section>
  );
}

/**
 * Who was observed, by role, grade and subject. No name field: a name needs the
 * person's recorded consent (docs/DOMAIN.md), which this screen does not collect.
 */
function Observed({ handle, doc }: { handle: DocHandle<any>; doc: any }) {
  const device = useDevice();
  const observed = doc.observed ?? {};
  const set = (field: "role" | "grade" | "subject", value: string) =>
    device.change(handle, d => {
      const v = value;
      if (field === "role" && !v.trim()) {
        // `observed` needs a role: without one, it goes.
        delete d.observed;
        return;
      }
      if (!d.observed) {
        if (field !== "role") return;
        d.observed = {};
      }
      if (v.trim()) d.observed[field] = new A.ImmutableString(v);
      else delete d.observed[field];
    });
  const hasRole = str(observed.role) !== "";
  return (
    <fieldset class="observed">
      <legend>Who was observed (no names)</legend>
      <div class="row wrap">
        <Field label="Role">
          {fid => <input id={fid} type="text" value={str(observed.role)} placeholder="teacher" onInput={e => set("role", (e.target as HTMLInputElement).value)} data-testid="observed-role" />}
        </Field>
        <Field label="Grade">
          {fid => <input id={fid} type="text" value={str(observed.grade)} disabled={!hasRole} onInput={e => set("grade", (e.target as HTMLInputElement).value)} />}
        </Field>
        <Field label="Subject">
          {fid => <input id={fid} type="text" value={str(observed.subject)} disabled={!hasRole} onInput={e => set("subject", (e.target as HTMLInputElement).value)} />}
        </Field>
      </div>
    </fieldset>
  );
}
