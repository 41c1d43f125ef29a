import { useState } from "preact/hooks";
import { str, uid } from "../domain";
import { A, type DocHandle, type DocumentId } from "../sync";
import { Field, Page, StatusBadge, fmtDate, useDevice } from "../ui";
import { ShareBox } from "./share";

const TYPES = ["observation", "debrief", "planning", "modeling", "co-facilitation", "data-review", "other"];

export function CoachingLogScreen({ id, handle, doc }: { id: DocumentId; handle: DocHandle<any>; doc: any }) {
  const device = useDevice();
  const today = new Date().toISOString().slice(0, 10);
  const [date, setDate] = useState(today);
  const [minutes, setMinutes] = useState("45");
  const [type, setType] = useState("debrief");
  const [participants, setParticipants] = useState([str(doc.coach), str(doc.client)].filter(Boolean).join(", "));
  const [summary, setSummary] = useState("");
  const [next, setNext] = useState("");
  const sessions: any[] = doc.sessions ?? [];
  const add = async (e: Event) => {
    e.preventDefault();
    const mins = Math.max(0, Math.min(1440, Math.round(Number(minutes) || 0)));
    const [sum, nextSteps] = [summary.trim(), next.trim()];
    setSummary("");
    setNext("");
    await device.change(handle, d => {
      const s: any = {
        id: uid("ses"),
        date: new Date(`${date}T12:00:00`).getTime(),
        minutes: mins,
        activityType: new A.ImmutableString(type),
        participants: participants
          .split(",")
          .map(p => p.trim())
          .filter(Boolean)
          .map(p => new A.ImmutableString(p)),
      };
      if (sum) s.summary = sum;
      if (nextSteps) s.nextSteps = nextSteps;
      d.sessions.push(s);
    });
  };
  return (
    <Page title={`Coaching log: ${str(doc.coach)} and ${str(doc.client)}`} back="#/">
      <p class="doc-facts">
        <StatusBadge id={id} />
      </p>
      <ol class="sessions" data-testid="sessions">
        {[...sessions]
          .sort((a, b) => a.date - b.date)
          .map(s => (
            <li key={str(s.id)}>
              <strong>
                {fmtDate(s.date)}, {str(s.activityType)}, {s.minutes} min
              </strong>
              <div class="meta">{(s.participants ?? []).map(str).join(", ")}</div>
              {str(s.summary) && <p>{str(s.summary)}</p>}
              {str(s.nextSteps) && <p>Next: {str(s.nextSteps)}</p>}
            </li>
          ))}
      </ol>
      <form onSubmit={add}>
        <h2>Log a session</h2>
        <div class="row wrap">
          <Field label="Date">{fid => <input id={fid} type="date" value={date} onInput={e => setDate((e.target as HTMLInputElement).value)} />}</Field>
          <Field label="Minutes">
            {fid => <input id={fid} type="number" min={0} max={1440} value={minutes} onInput={e => setMinutes((e.target as HTMLInputElement).value)} />}
          </Field>
          <Field label="Activity">
            {fid => (
              <select id={fid} value={type} onChange={e => setType((e.target as HTMLSelectElement).value)}>
                {TYPES.map(t => (
                  <option key={t}>{t}</option>
                ))}
              </select>
            )}
          </Field>
        </div>
        <Field label="Participants" hint="Separated by commas.">
          {fid => <input id={fid} type="text" value={participants} onInput={e => setParticipants((e.target as HTMLInputElement).value)} />}
        </Field>
        <Field label="Summary">{fid => <textarea id={fid} rows={3} value={summary} onInput={e => setSummary((e.target as HTMLTextAreaElement).value)} data-testid="session-summary" />}</Field>
        <Field label="Next steps">{fid => <textarea id={fid} rows={2} value={next} onInput={e => setNext((e.target as HTMLTextAreaElement).value)} />}</Field>
        <button type="submit" class="primary" data-testid="add-session">
          Add session
        </button>
      </form>
      <ShareBox id={id} />
    </Page>
  );
}
