// Rubric self-assessment: the leader's own ratings over time, drawn as a stage
// history per element. Stages are ordered labels: nothing is added up or averaged.

import { useState } from "preact/hooks";
import { RUBRIC, RUBRIC_ELEMENTS, str, uid } from "../domain";
import { A, type DocHandle, type DocumentId } from "../sync";
import { Field, Page, StatusBadge, fmtDate, useDevice } from "../ui";
import { StageHistory } from "./charts";
import { ShareBox } from "./share";

export function SelfAssessmentScreen({ id, handle, doc }: { id: DocumentId; handle: DocHandle<any>; doc: any }) {
  const device = useDevice();
  const [element, setElement] = useState(RUBRIC_ELEMENTS[0].id);
  const [current, setCurrent] = useState(RUBRIC.stages[0].id);
  const [target, setTarget] = useState(RUBRIC.stages[1]?.id ?? RUBRIC.stages[0].id);
  const [evidence, setEvidence] = useState("");
  const [goal, setGoal] = useState("");
  const ratings: any[] = doc.ratings ?? [];
  const focus: any[] = doc.focus ?? [];
  const rated = [...new Set(ratings.map(r => str(r.element)))];
  const focusIds = focus.map(f => str(f.element));
  const order = [...focusIds, ...rated.filter(e => !focusIds.includes(e))];

  const rate = async (e: Event) => {
    e.preventDefault();
    const text = evidence.trim();
    setEvidence("");
    await device.change(handle, d => {
      const entry: any = { id: uid("r"), at: Date.now(), element: new A.ImmutableString(element), current: new A.ImmutableString(current), target: new A.ImmutableString(target) };
      if (text) entry.evidence = text;
      d.ratings.push(entry);
    });
  };
  const addFocus = async (e: Event) => {
    e.preventDefault();
    if (focusIds.includes(element) || focus.length >= 5 || !goal.trim()) return;
    const text = goal.trim();
    setGoal("");
    await device.change(handle, d => {
      if (!d.focus) d.focus = [];
      d.focus.push({ id: uid("f"), element: new A.ImmutableString(element), goal: text, target: new A.ImmutableString(target), chosenAt: Date.now() });
    });
  };
  const name = (el: string) => RUBRIC_ELEMENTS.find(x => x.id === el)?.name ?? el;
  return (
    <Page title={`Self-assessment: ${str(doc.leader)}`} back="#/">
      <p class="doc-facts">
        <StatusBadge id={id} /> <span class="hint">{RUBRIC.name}. A growth tool, never a score.</span>
      </p>
      {order.length === 0 && <p>No ratings yet.</p>}
      {order.map(el => {
        const f = focus.find(x => str(x.element) === el);
        return (
          <section key={el} aria-label={name(el)} class="element">
            <h2>
              {name(el)} {f && <span class="tag">focus</span>}
            </h2>
            {f && <p>Goal: {str(f.goal)}</p>}
            <StageHistory
              title={`Stage history: ${name(el)}`}
              stages={RUBRIC.stages}
              target={str(f?.target) || undefined}
              points={ratings.filter(r => str(r.element) === el).map(r => ({ at: r.at, stage: str(r.current) }))}
            />
            <ul>
              {ratings
                .filter(r => str(r.element) === el)
                .map(r => (
                  <li key={str(r.id)}>
                    {fmtDate(r.at)}: {str(r.current)} → aiming for {str(r.target)}
                    {str(r.evidence) && `. ${str(r.evidence)}`}
                  </li>
                ))}
            </ul>
          </section>
        );
      })}
      <form onSubmit={rate}>
        <h2>Rate an element</h2>
        <Field label="Element">
          {fid => (
            <select id={fid} value={element} onChange={e => setElement((e.target as HTMLSelectElement).value)} data-testid="element">
              {RUBRIC_ELEMENTS.map(el => (
                <option key={el.id} value={el.id}>
                  {el.domain}: {el.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <div class="row wrap">
          <Field label="Where I am now">{fid => <StageSelect id={fid} value={current} onChange={setCurrent} testid="current" />}</Field>
          <Field label="Where I aim to be">{fid => <StageSelect id={fid} value={target} onChange={setTarget} />}</Field>
        </div>
        <Field label="Evidence">
          {fid => <textarea id={fid} rows={3} value={evidence} onInput={e => setEvidence((e.target as HTMLTextAreaElement).value)} />}
        </Field>
        <button type="submit" class="primary" data-testid="add-rating">
          Add rating
        </button>
      </form>
      <form onSubmit={addFocus}>
        <h2>Choose this element as a focus</h2>
        <Field label="My goal for it" hint={`Up to five focus elements (${focus.length} chosen).`}>
          {fid => <input id={fid} type="text" value={goal} onInput={e => setGoal((e.target as HTMLInputElement).value)} />}
        </Field>
        <button type="submit">Add focus</button>
      </form>
      <ShareBox id={id} />
    </Page>
  );
}

/** A choice of one of the rubric's stages, in their order. */
function StageSelect({ id, value, onChange, testid }: { id: string; value: string; onChange: (stage: string) => void; testid?: string }) {
  return (
    <select id={id} value={value} onChange={e => onChange((e.target as HTMLSelectElement).value)} data-testid={testid}>
      {RUBRIC.stages.map(s => (
        <option key={s.id} value={s.id}>
          {s.label}
        </option>
      ))}
    </select>
  );
}
