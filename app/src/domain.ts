// The document kinds the app writes, as docs/DOMAIN.md defines them (current
// versions), and the starter definitions it ships (core/data/definitions/).
//
// Plain values (enumerations, names, IDs, URLs) are written as ImmutableString so
// that concurrent sets never interleave characters; prose is Automerge text.

import classroom from "../../core/data/definitions/classroom-walkthrough-v1.json";
import hallway from "../../core/data/definitions/hallway-walkthrough-v1.json";
import lunchroom from "../../core/data/definitions/lunchroom-walkthrough-v1.json";
import rubric from "../../core/data/definitions/leadership-rubric-v1.json";
import { A, uid } from "./sync";

export const VERSIONS = {
  observation: 3,
  "observation-private-notes": 1,
  "work-plan": 2,
  "rubric-self-assessment": 2,
  "coaching-log": 1,
  "pdsa-cycle": 1,
  "coaching-relationship": 1,
} as const;

export type Kind = keyof typeof VERSIONS;

export const KIND_LABEL: Record<string, string> = {
  observation: "Walkthroughs",
  "observation-private-notes": "Private notes",
  "work-plan": "Work plans",
  "rubric-self-assessment": "Self-assessments",
  "coaching-log": "Coaching logs",
  "pdsa-cycle": "PDSA cycles",
  "coaching-relationship": "Relationships",
};

export interface LookFor {
  id: string;
  prompt: string;
  responseType: "yes-no" | "scale" | "count" | "text";
  scale?: string[];
}

export interface Template {
  id: string;
  version: number;
  name: string;
  setting: string;
  lookFors: LookFor[];
  tags?: string[];
}

/** A template for settings the starter set does not cover: notes only. */
const openNotes: Template = { id: "open-notes", version: 1, name: "Open notes (no look-fors)", setting: "other", lookFors: [] };

export const TEMPLATES: Template[] = [classroom as Template, hallway as Template, lunchroom as Template, openNotes];

export const templateOf = (ref?: { id?: unknown; version?: unknown }) =>
  TEMPLATES.find(t => t.id === String(ref?.id ?? "") && t.version === Number(ref?.version ?? 0));

export const SETTINGS = ["classroom", "hallway", "lunchroom", "meeting", "other"] as const;

export interface Rubric {
  id: string;
  version: number;
  name: string;
  stages: { id: string; label: string; description?: string }[];
  domains: { id: string; name: string; elements: { id: string; name: string }[] }[];
}
export const RUBRIC = rubric as unknown as Rubric;
export const RUBRIC_ELEMENTS = RUBRIC.domains.flatMap(d => d.elements.map(e => ({ ...e, domain: d.name })));

const s = (v: string) => new A.ImmutableString(v);
export const str = (v: unknown) => (v === undefined || v === null ? "" : String(v));

export function newObservation(o: { title: string; observer: string; setting: string; school?: string; template: Template; relationship?: string }) {
  const doc: Record<string, unknown> = {
    schema: "observation",
    schemaVersion: VERSIONS.observation,
    title: o.title,
    observer: s(o.observer),
    setting: s(o.setting),
    observedAt: Date.now(),
    template: { id: s(o.template.id), version: o.template.version },
    lookFors: {},
    script: [],
    context: "",
    nextStep: "",
    status: s("draft"),
  };
  if (o.school) doc.school = s(o.school);
  if (o.relationship) doc.relationship = s(o.relationship);
  return doc;
}

export function newPrivateNotes(observationUrl: string) {
  return {
    schema: "observation-private-notes",
    schemaVersion: VERSIONS["observation-private-notes"],
    observation: s(observationUrl),
    notes: "",
    wonderings: [],
  };
}

export function newWorkPlan(o: { title: string; client: string; coach: string; school?: string; relationship?: string }) {
  const doc: Record<string, unknown> = {
    schema: "work-plan",
    schemaVersion: VERSIONS["work-plan"],
    title: o.title,
    client: s(o.client),
    coach: s(o.coach),
    goals: [],
    theoryOfAction: "",
    activities: {},
    indicators: [],
  };
  if (o.school) doc.school = s(o.school);
  if (o.relationship) doc.relationship = s(o.relationship);
  return doc;
}

export function newSelfAssessment(o: { leader: string; relationship?: string }) {
  const doc: Record<string, unknown> = {
    schema: "rubric-self-assessment",
    schemaVersion: VERSIONS["rubric-self-assessment"],
    rubric: { id: s(RUBRIC.id), version: RUBRIC.version },
    leader: s(o.leader),
    // No `focus` until the leader chooses one: the list, when present, holds 1 to 5.
    ratings: [],
  };
  if (o.relationship) doc.relationship = s(o.relationship);
  return doc;
}

export function newCoachingLog(o: { coach: string; client: string; relationship?: string }) {
  const doc: Record<string, unknown> = {
    schema: "coaching-log",
    schemaVersion: VERSIONS["coaching-log"],
    coach: s(o.coach),
    client: s(o.client),
    sessions: [],
  };
  if (o.relationship) doc.relationship = s(o.relationship);
  return doc;
}

export function newPdsaCycle(o: { title: string; group?: string }) {
  const doc: Record<string, unknown> = {
    schema: "pdsa-cycle",
    schemaVersion: VERSIONS["pdsa-cycle"],
    title: o.title,
    changeIdea: "",
    prediction: "",
    plan: "",
    measure: s(""),
    stage: s("plan"),
    measurements: [],
  };
  if (o.group) doc.group = s(o.group);
  return doc;
}

/** Activities in priority order: by rank, then ID; removed ones left out. */
export function orderedActivities(activities: Record<string, any> | undefined) {
  return Object.entries(activities ?? {})
    .filter(([, a]) => !a.removed)
    .map(([id, a]) => ({ id, ...a, rank: Number(a.rank) }))
    .sort((a, b) => a.rank - b.rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * The rank that puts an item between `before` and `after` (either may be absent):
 * only the moved item's rank changes, so concurrent moves never lose or double it.
 */
export function rankBetween(before?: number, after?: number): number {
  if (before === undefined && after === undefined) return 1;
  if (before === undefined) return (after as number) - 1;
  if (after === undefined) return before + 1;
  return (before + after) / 2;
}

export { uid };

/** Median of a list of numbers (for run charts). */
export function median(values: number[]): number | undefined {
  if (!values.length) return undefined;
  const v = [...values].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
