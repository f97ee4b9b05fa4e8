// Power over time, drawn as SVG directly: no charting library. The record's series has at
// most 300 intervals, so plain SVG is small and fast; it lives in the DOM (the tests count
// its points), prints, needs no canvas, and keeps the page free of run-time dependencies.
// Colours come from classes in styles.css: no inline style (the page's CSP forbids it).
import { formatDurationS, formatPowerW } from "./units.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const LAYERS = [["cpu", "CPU"], ["gpu", "GPU"], ["ram", "RAM"]];  // stacked bottom to top
const ARRAYS = ["start_offset_s", "duration_s", "cpu_power_w", "gpu_power_w", "ram_power_w", "measured"];
// Tick steps: past a minute (or an hour) units.js writes minutes (hours), so the steps are
// whole half-minutes (half-hours) there and every tick reads "1.5 min", never "1.17 min".
const TIME_STEPS_S = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
                      10800, 21600, 43200, 86400, 172800, 432000, 864000];
const timeStep = (end, ticks) => TIME_STEPS_S.find((s) => (end < 60 || s % 30 === 0) && (end < 3600 || s % 1800 === 0)
  && end / s <= ticks) || niceStep(end, ticks);

// Records hold at most 300; a file claiming far more is not drawn (it could stall the page).
export const MAX_POINTS = 1000;
const finite = (v) => typeof v === "number" && Number.isFinite(v) && v >= 0;

/** The series' intervals, or null when the series is absent or unusable. */
export function intervalsOf(series) {
  if (!series || typeof series !== "object") return null;
  const n = Array.isArray(series.start_offset_s) ? series.start_offset_s.length : 0;
  if (!n || n > MAX_POINTS || !ARRAYS.every((k) => Array.isArray(series[k]) && series[k].length === n)) return null;
  const out = [];
  for (let i = 0; i < n; i += 1) {
    const row = { start: series.start_offset_s[i], duration: series.duration_s[i], cpu: series.cpu_power_w[i],
                  gpu: series.gpu_power_w[i], ram: series.ram_power_w[i], measured: series.measured[i] === true };
    if (![row.start, row.duration, row.cpu, row.gpu, row.ram].every(finite)) return null;
    out.push(row);
  }
  return out;
}

/** A 1-2-5 step giving about `count` ticks up to `max`. */
function niceStep(max, count) {
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

/** Duration-weighted mean power of each component, in watts. */
export function meanPowers(rows) {
  const time = rows.reduce((s, r) => s + r.duration, 0);
  const out = {};
  for (const [k] of LAYERS) out[k] = time > 0 ? rows.reduce((s, r) => s + r[k] * r.duration, 0) / time : null;
  return out;
}

/**
 * The chart as an <svg>, `width` pixels wide (drawn at the size shown, so its text stays
 * readable on a phone), or null when the series is unusable. data-points is the number of
 * intervals drawn: exactly the record's series length.
 */
export function powerChart(series, width = 640, height = 220) {
  const rows = intervalsOf(series);
  if (!rows) return null;
  const m = { left: 58, right: 10, top: 10, bottom: 30 };
  const w = Math.max(width, 200), h = height;
  const pw = w - m.left - m.right, ph = h - m.top - m.bottom;
  const end = Math.max(...rows.map((r) => r.start + r.duration), 1e-9);
  const peak = Math.max(...rows.map((r) => r.cpu + r.gpu + r.ram), 1e-9);
  const yStep = niceStep(peak, 4);
  const yMax = Math.ceil(peak / yStep - 1e-9) * yStep;
  const x = (t) => m.left + (t / end) * pw;
  const y = (p) => m.top + ph - (p / yMax) * ph;
  const r2 = (v) => Math.round(v * 100) / 100;

  const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h, class: "power-chart", role: "img",
                          "data-points": rows.length,
                          "data-extrapolated": rows.filter((r) => !r.measured).length });
  const means = meanPowers(rows);
  svg.append(el("title", {}, `Power over time by component, peak ${formatPowerW(peak)}`));
  const defs = el("defs");
  const hatch = el("pattern", { id: "mrv-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
                                patternTransform: "rotate(45)" });
  hatch.append(el("rect", { width: 6, height: 6, class: "hatch-bg" }), el("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "hatch-line" }));
  defs.append(hatch);
  svg.append(defs);

  // grid lines behind the data, labels and the base line above it
  const grid = el("g", { class: "axis" });
  const axis = el("g", { class: "axis" });
  for (let p = 0; p <= yMax + yStep / 2; p += yStep) {
    (p === 0 ? axis : grid).append(el("line", { x1: m.left, x2: m.left + pw, y1: r2(y(p)), y2: r2(y(p)), class: p === 0 ? "base" : "grid" }));
    axis.append(el("text", { x: m.left - 6, y: r2(y(p)) + 4, "text-anchor": "end" }, formatPowerW(p)));
  }
  svg.append(grid);
  const tStep = timeStep(end, Math.max(2, Math.floor(pw / 70)));
  for (let t = 0; t <= end + 1e-9; t += tStep) {
    axis.append(el("line", { x1: r2(x(t)), x2: r2(x(t)), y1: m.top + ph, y2: m.top + ph + 4, class: "base" }));
    const anchor = t === 0 ? "start" : x(t) > m.left + pw - 24 ? "end" : "middle";
    axis.append(el("text", { x: r2(x(t)), y: m.top + ph + 18, "text-anchor": anchor },
                   formatDurationS(t)));
  }

  // the stacked layers: one path per component, one rectangle per interval
  const layers = el("g", { class: "layers", "shape-rendering": "crispEdges" });
  const base = rows.map(() => 0);
  for (const [k, label] of LAYERS) {
    let d = "";
    rows.forEach((r, i) => {
      const lo = base[i], hi = lo + r[k];
      base[i] = hi;
      if (r[k] <= 0) return;
      const x0 = r2(x(r.start)), x1 = r2(x(r.start + r.duration));
      d += `M${x0} ${r2(y(lo))}V${r2(y(hi))}H${x1}V${r2(y(lo))}Z`;
    });
    const path = el("path", { d: d || "M0 0", class: `c-${k}`, "data-component": k });
    path.append(el("title", {}, `${label}: mean ${formatPowerW(means[k])}`));
    layers.append(path);
  }
  svg.append(layers);

  // extrapolated intervals: hatched over the whole plot height, so they show at any power
  const marks = el("g", { class: "extrapolated" });
  for (const r of rows.filter((row) => !row.measured)) {
    const x0 = x(r.start), x1 = x(r.start + r.duration);
    const band = el("rect", { x: r2(x0), y: m.top, width: r2(Math.max(x1 - x0, 1)), height: ph, fill: "url(#mrv-hatch)",
                              "data-extrapolated": "1" });
    band.append(el("title", {}, `extrapolated, not measured: ${formatDurationS(r.duration)} from ${formatDurationS(r.start)}`));
    marks.append(band);
  }
  svg.append(marks, axis);
  return svg;
}

/** The legend entries: [{key, label, text}] with each component's mean power. */
export function legendOf(series) {
  const rows = intervalsOf(series);
  if (!rows) return [];
  const means = meanPowers(rows);
  const out = LAYERS.map(([key, label]) => ({ key, label, text: `${label} · mean ${formatPowerW(means[key])}` }));
  const unmeasured = rows.filter((r) => !r.measured);
  if (unmeasured.length) {
    const seconds = unmeasured.reduce((s, r) => s + r.duration, 0);
    out.push({ key: "extrapolated", label: "extrapolated",
               text: `extrapolated, not measured (${formatDurationS(seconds)})` });
  }
  return out;
}

/** A bar of shares (the energy split): an <svg> whose rectangles' widths are percentages. */
export function shareBar(parts) {
  const svg = el("svg", { class: "share-bar", width: "100%", height: 18, role: "img", "aria-hidden": "true" });
  let at = 0;
  for (const p of parts) {
    if (!(p.share > 0)) continue;
    svg.append(el("rect", { x: `${r4(at * 100)}%`, y: 0, width: `${r4(p.share * 100)}%`, height: 18,
                            class: `c-${p.key}`, "data-component": p.key }));
    at += p.share;
  }
  return svg;
}
const r4 = (v) => Math.round(v * 1e4) / 1e4;
