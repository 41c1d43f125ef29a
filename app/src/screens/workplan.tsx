// Work plan: goals, theory of action, prioritized activities (a map keyed by ID,
// ordered by rank; a move sets only the moved activity's rank), evidence, and who
// else has the plan open (ephemeral presence messages).

import { useEffect, useState } from "preact/hooks";
import { orderedActivities, rankBetween, str, uid } from "../domain";
import { A, type DocHandle, type DocumentId, type PresenceEntry } from "../sync";
import { Field, Page, StatusBadge, TextField, fmtDate, useDevice } from "../ui";
import { ShareBox } from "./share";

const STATUSES = ["planned", "in-progress", "done", "paused"];

export function WorkPlanScreen({ id, handle, doc }: { id: DocumentId; handle: DocHandle<any>; doc: any }) {
  const device = useDevice();
  const [others, setOthers] = useState<PresenceEntry[]>([]);
  useEffect(() => device.presence(handle, setOthers), [handle]);
  const activities = orderedActivities(doc.activities);
  const [newActivity, setNewActivity] = useState("");
  const [newGoal, setNewGoal] = useState("");

  const addActivity = async (e: Event) => {
    e.preventDefault();
    const title = newActivity.trim();
    if (!title) return;
    setNewActivity("");
    const last = activities[activities.length - 1];
    await device.change(handle, d => {
      if (!d.activities) d.activities = {};
      d.activities[uid("act")] = { title, rank: rankBetween(last?.rank, undefined), status: new A.ImmutableString("planned") };
    });
  };
  const move = async (index: number, delta: -1 | 1) => {
    const target = index + delta;
    if (target < 0 || target >= activities.length) return;
    const moved = activities[index];
    const rest = activities.filter((_, i) => i !== index);
    const before = rest[target - 1];
    const after = rest[target];
    const rank = rankBetween(before?.rank, after?.rank);
    await device.change(handle, d => {
      d.activities[moved.id].rank = rank;
    });
    setTimeout(() => document.querySelector<HTMLButtonElement>(`[data-activity="${moved.id}"] [data-move="${delta < 0 ? "up" : "down"}"]`)?.focus(), 0);
  };
  const remove = (actId: string) =>
    device.change(handle, d => {
      d.activities[actId].removed = true;
    });
  const setField = (actId: string, field: string, value: string) =>
    device.change(handle, d => {
      d.activities[actId][field] = new A.ImmutableString(value);
    });
  const addGoal = async (e: Event) => {
    e.preventDefault();
    const text = newGoal.trim();
    if (!text) return;
    setNewGoal("");
    await device.change(handle, d => {
      d.goals.push({ id: uid("goal"), text, evidence: [] });
    });
  };

  return (
    <Page title={str(doc.title) || "Work plan"} back="#/">
      <p class="doc-facts">
        <StatusBadge id={id} />{" "}
        <span class="presence" data-testid="presence" aria-live="polite">
          {others.length ? `Also here: ${[...new Set(others.map(o => o.name))].join(", ")}` : "Nobody else has this plan open."}
        </span>
      </p>
      <p class="meta">
        {[str(doc.school), `client ${str(doc.client)}`, `coach ${str(doc.coach)}`, str(doc.schoolYear)].filter(Boolean).join(" · ")}
      </p>
      <TextField handle={handle} doc={doc} path={["title"]} label="Title" testId="plan-title" />
      <TextField handle={handle} doc={doc} path={["theoryOfAction"]} label="Theory of action" hint="“If we …, then …”" multiline testId="theory" />

      <section aria-labelledby="goals-h">
        <h2 id="goals-h">Goals</h2>
        {(doc.goals ?? []).map((goal: any, gi: number) => (
          <Goal key={str(goal.id)} handle={handle} doc={doc} index={gi} />
        ))}
        <form onSubmit={addGoal} class="row">
          <Field label="New goal">
            {fid => <input id={fid} type="text" value={newGoal} onInput={e => setNewGoal((e.target as HTMLInputElement).value)} data-testid="new-goal" />}
          </Field>
          <button type="submit">Add goal</button>
        </form>
      </section>

      <section aria-labelledby="acts-h">
        <h2 id="acts-h">Prioritized activities</h2>
        <ol class="activities" data-testid="activities">
          {activities.map((act, i) => (
            <li key={act.id} data-activity={act.id} class="activity">
              <TextField handle={handle} doc={doc} path={["activities", act.id, "title"]} label={`Activity ${i + 1}`} testId="activity-title" />
              <div class="row wrap">
                <Field label="Status">
                  {fid => (
                    <select id={fid} value={str(act.status)} onChange={e => setField(act.id, "status", (e.target as HTMLSelectElement).value)}>
                      {STATUSES.map(s => (
                        <option key={s}>{s}</option>
                      ))}
                    </select>
                  )}
                </Field>
                <Field label="Kind">
                  {fid => (
                    <select id={fid} value={str(act.kind)} onChange={e => setField(act.id, "kind", (e.target as HTMLSelectElement).value)}>
                      <option value="">(not set)</option>
                      <option value="coach-support">coach support</option>
                      <option value="client-action">leader's action</option>
                    </select>
                  )}
                </Field>
              </div>
              <div class="row">
                <button type="button" data-move="up" onClick={() => move(i, -1)} disabled={i === 0} aria-label={`Move up: ${str(act.title)}`}>
                  ↑ Up
                </button>
                <button type="button" data-move="down" onClick={() => move(i, 1)} disabled={i === activities.length - 1} aria-label={`Move down: ${str(act.title)}`}>
                  ↓ Down
                </button>
                <button type="button" class="quiet" onClick={() => remove(act.id)} aria-label={`Remove: ${str(act.title)}`}>
                  Remove
                </button>
              </div>
            </li>
          ))}
        </ol>
        <form onSubmit={addActivity} class="row">
          <Field label="New activity">
            {fid => <input id={fid} type="text" value={newActivity} onInput={e => setNewActivity((e.target as HTMLInputElement).value)} data-testid="new-activity" />}
          </Field>
          <button type="submit" data-testid="add-activity">
            Add activity
          </button>
        </form>
      </section>
      <ShareBox id={id} />
    </Page>
  );
}

function Goal({ handle, doc, index }: { handle: DocHandle<any>; doc: any; index: number }) {
  const device = useDevice();
  const goal = doc.goals[index];
  const [evidence, setEvidence] = useState("");
  const add = async (e: Event) => {
    e.preventDefault();
    const text = evidence.trim();
    if (!text) return;
    setEvidence("");
    await device.change(handle, d => {
      const g = d.goals.find((x: any) => str(x.id) === str(goal.id));
      if (!g) return;
      if (!g.evidence) g.evidence = [];
      g.evidence.push({ id: uid("ev"), at: Date.now(), text });
    });
  };
  return (
    <div class="goal">
      <TextField handle={handle} doc={doc} path={["goals", index, "text"]} label={`Goal ${index + 1}`} multiline />
      <h3>Evidence</h3>
      <ul>
        {(goal.evidence ?? []).map((ev: any) => (
          <li key={str(ev.id)}>
            {fmtDate(ev.at)}: {str(ev.text)}
          </li>
        ))}
      </ul>
      <form onSubmit={add} class="row">
        <Field label={`New evidence for goal ${index + 1}`}>
          {fid => <input id={fid} type="text" value={evidence} onInput={e => setEvidence((e.target as HTMLInputElement).value)} />}
        </Field>
        <button type="submit">Add evidence</button>
      </form>
    </div>
  );
}
