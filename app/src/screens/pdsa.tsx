import { useState } from "preact/hooks";
import { str, uid } from "../domain";
import { A, type DocHandle, type DocumentId } from "../sync";
import { Field, Page, StatusBadge, TextField, fmtDate, useDevice } from "../ui";
import { RunChart } from "./charts";

const STAGES = ["plan", "do", "study", "act", "closed"];

export function PdsaScreen({ id, handle, doc }: { id: DocumentId; handle: DocHandle<any>; doc: any }) {
  const device = useDevice();
  const [date, setDate] = useState(new Date().toISOString().slice(0, 10));
  const [value, setValue] = useState("");
  const [note, setNote] = useState("");
  const measurements: any[] = doc.measurements ?? [];
  const add = async (e: Event) => {
    e.preventDefault();
    const v = Number(value);
    if (value.trim() === "" || !Number.isFinite(v)) return;
    const text = note.trim();
    setValue("");
    setNote("");
    await device.change(handle, d => {
      if (!d.measurements) d.measurements = [];
      const m: any = { id: uid("m"), at: new Date(`${date}T12:00:00`).getTime(), value: v };
      if (text) m.note = text;
      d.measurements.push(m);
    });
  };
  const set = (field: string, v: string) =>
    device.change(handle, d => {
      d[field] = new A.ImmutableString(v);
    });
  return (
    <Page title={str(doc.title) || "PDSA cycle"} back="#/">
      <p class="doc-facts">
        <StatusBadge id={id} /> <span class="hint">{doc.group ? `Team: ${str(doc.group)}` : "Only you can read it."}</span>
      </p>
      <Field label="Stage">
        {fid => (
          <select id={fid} value={str(doc.stage)} onChange={e => set("stage", (e.target as HTMLSelectElement).value)}>
            {STAGES.map(s => (
              <option key={s}>{s}</option>
            ))}
          </select>
        )}
      </Field>
      <TextField handle={handle} doc={doc} path={["title"]} label="Title" />
      <TextField handle={handle} doc={doc} path={["changeIdea"]} label="Change idea" multiline />
      <TextField handle={handle} doc={doc} path={["prediction"]} label="Prediction" multiline />
      <TextField handle={handle} doc={doc} path={["plan"]} label="Plan" multiline />
      <Field label="Measure">
        {fid => <input id={fid} type="text" value={str(doc.measure)} onChange={e => set("measure", (e.target as HTMLInputElement).value)} />}
      </Field>
      <RunChart title={`Run chart: ${str(doc.measure) || "measure"}`} points={measurements.map(m => ({ at: m.at, value: Number(m.value) }))} />
      <ul class="measurements">
        {[...measurements]
          .sort((a, b) => a.at - b.at)
          .map(m => (
            <li key={str(m.id)}>
              {fmtDate(m.at)}: {m.value}
              {str(m.note) && `. ${str(m.note)}`}
            </li>
          ))}
      </ul>
      <form onSubmit={add}>
        <h2>Add a measurement</h2>
        <div class="row wrap">
          <Field label="Date">{fid => <input id={fid} type="date" value={date} onInput={e => setDate((e.target as HTMLInputElement).value)} />}</Field>
          <Field label="Value">{fid => <input id={fid} type="number" step="any" value={value} onInput={e => setValue((e.target as HTMLInputElement).value)} data-testid="measure-value" />}</Field>
        </div>
        <Field label="Note">{fid => <input id={fid} type="text" value={note} onInput={e => setNote((e.target as HTMLInputElement).value)} />}</Field>
        <button type="submit" class="primary" data-testid="add-measurement">
          Add measurement
        </button>
      </form>
      <TextField handle={handle} doc={doc} path={["do"]} label="Do: what happened" multiline />
      <TextField handle={handle} doc={doc} path={["study"]} label="Study: results against the prediction" multiline />
      <Field label="Act: decision">
        {fid => (
          <select id={fid} value={str(doc.act)} onChange={e => set("act", (e.target as HTMLSelectElement).value)}>
            <option value="">(not yet)</option>
            <option>adopt</option>
            <option>adapt</option>
            <option>abandon</option>
          </select>
        )}
      </Field>
    </Page>
  );
}
