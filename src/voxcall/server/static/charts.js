// The per-turn latency chart: stacked bars (one per spoken turn) from the call's stored
// `turn_latency` events, drawn as inline SVG with axis labels, a legend and a data table.
// `latencyTurns` and `niceTicks` are pure (Node tests); the rest builds DOM when called.

/** The stages of a turn, in the order they happen (keys of the event's `extras`). */
export const LATENCY_STAGES = [
  { key: "endpointMs", label: "End of turn", help: "from the end of speech until the turn was judged over", color: "#0b5cad" },
  { key: "transcriptMs", label: "Transcript", help: "until the words were transcribed", color: "#c4610a" },
  { key: "firstTokenMs", label: "First token", help: "until the language model's first token", color: "#2e7d32" },
  { key: "firstAudioMs", label: "First audio", help: "until the agent's first audio went out", color: "#7a3fc2" },
];

const ms = (value) => {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
};

/**
 * The chart's data: one entry per `turn_latency` event, oldest first.
 * Stage values are whole milliseconds, never negative; `total` is the reported total
 * (`totalMs`), else the stages' sum.
 */
export function latencyTurns(events) {
  return (events || [])
    .filter((e) => e && e.type === "turn_latency" && e.extras && typeof e.extras === "object")
    .map((e, index) => {
      const stages = LATENCY_STAGES.map((s) => ({ key: s.key, label: s.label, ms: ms(e.extras[s.key]) }));
      const sum = stages.reduce((acc, s) => acc + s.ms, 0);
      const reported = Number(e.extras.totalMs);
      return { turn: index + 1, at: e.callTimestamp ?? null, stages, sum, total: Number.isFinite(reported) ? Math.max(0, Math.round(reported)) : sum };
    });
}

/** Round axis ticks from 0 to at least `max`: steps of 1, 2, 2.5 or 5 times a power of ten. */
export function niceTicks(max, count = 5) {
  if (!(max > 0)) return { top: 100, step: 25, ticks: [0, 25, 50, 75, 100] };
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const top = Math.ceil(max / step) * step;
  const ticks = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(Math.round(v * 1000) / 1000);
  return { top, step, ticks };
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

const text = (x, y, value, attrs = {}) => svg("text", { x, y, ...attrs }, String(value));

/** The stacked-bar SVG for `turns`, `width` pixels wide. */
export function latencyChart(turns, { width = 640, height = 280, id = "latency" } = {}) {
  const margin = { top: 20, right: 12, bottom: 46, left: 64 };
  const plotW = Math.max(80, width - margin.left - margin.right);
  const plotH = height - margin.top - margin.bottom;
  const { top, ticks } = niceTicks(Math.max(...turns.map((t) => Math.max(t.sum, t.total)), 0));
  const y = (v) => margin.top + plotH - (v / top) * plotH;
  const slot = plotW / Math.max(1, turns.length);
  const barW = Math.max(3, Math.min(48, slot * 0.6));
  const labelEvery = Math.ceil(22 / slot);
  const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "latency-chart",
    "aria-labelledby": `${id}-title ${id}-desc` });
  chart.append(
    svg("title", { id: `${id}-title` }, "Latency per turn, by stage"),
    svg("desc", { id: `${id}-desc` }, `${turns.length} turn${turns.length === 1 ? "" : "s"}; totals ${turns.map((t) => `${t.total} ms`).join(", ")}.`),
  );
  const grid = svg("g", { class: "axis", "aria-hidden": "true" });
  for (const tick of ticks) {
    grid.append(svg("line", { x1: margin.left, x2: margin.left + plotW, y1: y(tick), y2: y(tick), class: tick ? "grid" : "baseline" }));
    grid.append(text(margin.left - 6, y(tick) + 4, tick, { "text-anchor": "end" }));
  }
  grid.append(text(14, margin.top + plotH / 2, "ms after speech ended", { transform: `rotate(-90 14 ${margin.top + plotH / 2})`, "text-anchor": "middle", class: "axis-title" }));
  grid.append(text(margin.left + plotW / 2, height - 6, "Turn", { "text-anchor": "middle", class: "axis-title" }));
  chart.append(grid);
  turns.forEach((turn, i) => {
    const x = margin.left + slot * i + (slot - barW) / 2;
    const bar = svg("g", { class: "bar", "data-turn": turn.turn });
    let base = 0;
    turn.stages.forEach((stage, s) => {
      const h = (stage.ms / top) * plotH;
      bar.append(svg("rect", { x, y: y(base + stage.ms), width: barW, height: Math.max(0, h), fill: LATENCY_STAGES[s].color,
        "data-stage": stage.key }, svg("title", {}, `Turn ${turn.turn} · ${stage.label}: ${stage.ms} ms`)));
      base += stage.ms;
    });
    if (slot >= 30) bar.append(text(x + barW / 2, y(base) - 4, turn.total, { "text-anchor": "middle", class: "bar-total" }));
    if (i % labelEvery === 0) bar.append(text(x + barW / 2, margin.top + plotH + 16, turn.turn, { "text-anchor": "middle" }));
    chart.append(bar);
  });
  return chart;
}

/** The legend: one entry per stage, its colour and what it measures. */
export function latencyLegend() {
  const list = document.createElement("ul");
  list.className = "legend";
  list.setAttribute("aria-label", "Legend");
  for (const stage of LATENCY_STAGES) {
    const item = document.createElement("li");
    const swatch = svg("svg", { width: 14, height: 14, "aria-hidden": "true" }, svg("rect", { width: 14, height: 14, rx: 2, fill: stage.color }));
    const label = document.createElement("strong");
    label.textContent = stage.label;
    item.append(swatch, label, ` ${stage.help}`);
    list.append(item);
  }
  return list;
}

/** The same numbers as a table, for reading exact values and for screen readers. */
export function latencyTable(turns) {
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const name of ["Turn", ...LATENCY_STAGES.map((s) => s.label), "Total"]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = name;
    head.append(th);
  }
  const body = table.createTBody();
  for (const turn of turns) {
    const row = body.insertRow();
    for (const value of [turn.turn, ...turn.stages.map((s) => `${s.ms} ms`), `${turn.total} ms`]) row.insertCell().textContent = String(value);
  }
  return table;
}
