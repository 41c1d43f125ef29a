// Small SVG charts: a stage history (ordered labels, never points or averages) and
// a run chart with its median.

import { median } from "../domain";
import { fmtDate } from "../ui";

const W = 320;
const H = 160;
const PAD = { l: 96, r: 12, t: 12, b: 24 };

export function StageHistory(props: { title: string; stages: { id: string; label: string }[]; points: { at: number; stage: string }[]; target?: string }) {
  const pts = [...props.points].sort((a, b) => a.at - b.at);
  const x0 = pts[0]?.at ?? 0;
  const x1 = pts[pts.length - 1]?.at ?? 1;
  const sx = (t: number) => PAD.l + (x1 === x0 ? (W - PAD.l - PAD.r) / 2 : ((t - x0) / (x1 - x0)) * (W - PAD.l - PAD.r));
  const step = (H - PAD.t - PAD.b) / Math.max(1, props.stages.length - 1);
  const sy = (id: string) => H - PAD.b - Math.max(0, props.stages.findIndex(s => s.id === id)) * step;
  const path = pts.map((p, i) => `${i ? "L" : "M"}${sx(p.at).toFixed(1)},${sy(p.stage).toFixed(1)}`).join(" ");
  const summary = pts.map(p => `${fmtDate(p.at)}: ${props.stages.find(s => s.id === p.stage)?.label ?? p.stage}`).join("; ");
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${props.title}. ${summary || "No ratings yet."}`}>
        {props.stages.map(s => (
          <g key={s.id}>
            <line x1={PAD.l} x2={W - PAD.r} y1={sy(s.id)} y2={sy(s.id)} class={s.id === props.target ? "grid target" : "grid"} />
            <text x={PAD.l - 6} y={sy(s.id) + 4} text-anchor="end" class="axis">
              {s.label}
            </text>
          </g>
        ))}
        {pts.length > 0 && <path d={path} class="series" />}
        {pts.map((p, i) => (
          <circle key={i} cx={sx(p.at)} cy={sy(p.stage)} r={4} class="dot" />
        ))}
      </svg>
      <figcaption>{props.title}</figcaption>
    </figure>
  );
}

export function RunChart(props: { title: string; unit?: string; points: { at: number; value: number }[] }) {
  const pts = [...props.points].filter(p => Number.isFinite(p.value)).sort((a, b) => a.at - b.at);
  const values = pts.map(p => p.value);
  const med = median(values);
  const lo = Math.min(...values, med ?? 0);
  const hi = Math.max(...values, med ?? 1);
  const left = 40;
  const sx = (i: number) => left + (pts.length <= 1 ? (W - left - PAD.r) / 2 : (i / (pts.length - 1)) * (W - left - PAD.r));
  const sy = (v: number) => H - PAD.b - (hi === lo ? 0.5 : (v - lo) / (hi - lo)) * (H - PAD.t - PAD.b);
  const path = pts.map((p, i) => `${i ? "L" : "M"}${sx(i).toFixed(1)},${sy(p.value).toFixed(1)}`).join(" ");
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${props.title}: ${pts.length} points${med !== undefined ? `, median ${med}` : ""}. ${pts.map(p => `${fmtDate(p.at)} ${p.value}`).join("; ")}`}
      >
        <text x={left - 6} y={sy(hi) + 4} text-anchor="end" class="axis">
          {hi}
        </text>
        <text x={left - 6} y={sy(lo) + 4} text-anchor="end" class="axis">
          {lo}
        </text>
        {med !== undefined && (
          <>
            <line x1={left} x2={W - PAD.r} y1={sy(med)} y2={sy(med)} class="median" />
            <text x={W - PAD.r} y={sy(med) - 4} text-anchor="end" class="axis">
              median {med}
            </text>
          </>
        )}
        {pts.length > 0 && <path d={path} class="series" />}
        {pts.map((p, i) => (
          <circle key={i} cx={sx(i)} cy={sy(p.value)} r={3.5} class="dot" />
        ))}
      </svg>
      <figcaption>
        {props.title}
        {props.unit ? ` (${props.unit})` : ""}
      </figcaption>
    </figure>
  );
}
