// How good the record's measurement is, said honestly: which components were measured by
// hardware counters and which estimated (and from what), how much of the run was
// extrapolated, where the grid intensity comes from, the PUE, and the energy split.
// Pure functions of the record (untrusted: the caller renders with textContent).
import { MISSING, formatDurationS, formatEnergyKwh, formatIntensityGPerKwh, formatNumber, formatPowerW,
         formatShare } from "./units.js";

const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
const text = (v, max = 300) => (typeof v === "string" ? (v.length > max ? `${v.slice(0, max - 1)}…` : v) : "");

export const COMPONENTS = [["cpu", "CPU"], ["gpu", "GPU"], ["ram", "RAM"]];

// A component CodeCarbon found nothing of (no GPU) is absent, not estimated.
const absent = (m) => /^none\b/i.test(text(m?.method));

// An imported record's method: CodeCarbon's CSV does not say how it measured.
const importedMethod = (m) => /\(imported\)/i.test(text(m?.method));

/** "measured", "partly measured" or "estimated (no hardware energy counters)". */
export function qualityWord(ee) {
  if (!isObj(ee)) return MISSING;
  if (ee.measurement_status === "failed") return "failed: no energy figures";
  const methods = isObj(ee.methods) ? ee.methods : {};
  const present = COMPONENTS.map(([k]) => methods[k]).filter((m) => isObj(m) && !absent(m));
  const measured = present.filter((m) => m.measured === true).length;
  if (present.length && present.every(importedMethod)) return "unknown: imported, CodeCarbon's CSV does not say how";
  if (present.length && measured === present.length) return "measured (hardware energy counters)";
  if (measured > 0) return "partly measured, partly estimated";
  return "estimated (no hardware energy counters)";
}

/** The tile's word: "measured", "partly measured", "estimated", "failed". */
export function qualityShort(ee) {
  return qualityWord(ee).replace(/[:(].*$/, "").replace(/, partly estimated$/, "").trim();
}

/** "; range 50.0 mWh–150 mWh" where the method is an estimate with a range (uncertainty). */
export function rangeText(m, value, format = formatEnergyKwh) {
  const u = isObj(m?.uncertainty) ? m.uncertainty : null;
  const low = num(u?.low_factor), high = num(u?.high_factor), v = num(value);
  if (low === null || high === null || v === null) return "";
  return `; range ${format(v * low)}–${format(v * high)}`;
}

/** One line per component: "measured: RAPL energy counters" / "estimated: … (TDP 65 W)". */
export function componentLine(m, kwh = null) {
  if (!isObj(m)) return MISSING;
  const method = text(m.method) || MISSING;
  if (absent(m)) return `not present (${method})`;
  if (m.measured === true) return `measured: ${method}${rangeText(m, kwh)}`;
  if (importedMethod(m)) return method;
  const tdp = num(m.tdp_w);
  const tdpText = tdp === null ? "" : `; TDP ${formatPowerW(tdp)}${m.generic_tdp === true ? ", a generic figure: the CPU model was not recognised" : ""}`;
  return `${/^estimated\b/i.test(method) ? "" : "estimated: "}${method}${tdpText}${rangeText(m, kwh)}`;
}

/** The intervals CodeCarbon did not measure: {seconds, share, whole, methods}. */
export function extrapolation(ee) {
  const duration = num(ee?.duration_seconds);
  const intervals = Array.isArray(ee?.intervals) ? ee.intervals.filter(isObj) : [];
  const out = intervals.filter((i) => i.measured === false || /^extrapolated/i.test(text(i.method)));
  let seconds = 0;
  for (const i of out) {
    const a = num(i.start_offset_s), b = num(i.end_offset_s);
    if (a !== null && b !== null && b > a) seconds += b - a;
  }
  const whole = duration !== null && duration > 0 && out.length > 0 && seconds >= duration * 0.999;
  return { count: out.length, seconds, duration, whole, methods: [...new Set(out.map((i) => text(i.method)).filter(Boolean))] };
}

function extrapolationLine(ee) {
  const x = extrapolation(ee);
  if (!x.count) return "none: CodeCarbon measured the whole run";
  const how = x.methods.join("; ");
  const what = /^extrapolated\b/i.test(how) ? how : `extrapolated${how ? `: ${how}` : ""}`;
  if (x.whole) return `the whole run (${formatDurationS(x.seconds)}, 100 %) is ${what}`;
  return `${formatDurationS(x.seconds)} (${formatShare(x.seconds, x.duration)} of the run) ${what}`;
}

/** Where the grid's carbon intensity comes from, with the record's own note. */
export function intensitySource(ee) {
  const place = [text(ee?.country_iso_code, 40), text(ee?.region, 80)].filter(Boolean).join(", ");
  switch (ee?.location_source) {
    case "default": return "world average: no country was configured";
    case "configured": return `configured: ${place || MISSING}`;
    case "online": return `looked up online: ${place || MISSING}`;
    default: return place || MISSING;
  }
}

/** Rows [label, value] for the measurement-quality list. */
export function qualityRows(record) {
  const ee = isObj(record?.energy_emissions) ? record.energy_emissions : {};
  const tool = [text(ee.measurement_tool, 60), text(ee.measurement_tool_version, 40)].filter(Boolean).join(" ") || MISSING;
  // An imported record's figures are CodeCarbon's CSV row: nothing says how they were
  // measured or what was extrapolated, so claim neither.
  const imported = isObj(record?.provenance) && record.provenance.kind === "imported";
  const rows = [["Measurement", `${tool} · ${qualityWord(ee)}`]];
  if (imported) rows.push(["Provenance", "imported from CodeCarbon's emissions.csv; mrv-ml did not watch this run"]);
  if (ee.measurement_status === "failed") {
    rows.push(["Why", text(ee.measurement_error) || MISSING]);
  }
  const methods = isObj(ee.methods) ? ee.methods : {};
  for (const [k, label] of COMPONENTS) rows.push([label, componentLine(methods[k], ee[`${k}_energy_kwh`])]);
  rows.push(["Not measured", imported ? "unknown: CodeCarbon's CSV does not say" : extrapolationLine(ee)]);
  rows.push(["Grid intensity", `${formatIntensityGPerKwh(ee.carbon_intensity_g_per_kwh)}, ${intensitySource(ee)}${rangeText(methods.grid, ee.carbon_intensity_g_per_kwh, formatIntensityGPerKwh)}`]);
  const pue = num(ee.pue);
  rows.push(["PUE", pue === null ? MISSING
    : `${formatNumber(pue)}${pue === 1 ? " (no data-centre overhead counted)" : " (data-centre overhead included in the total)"}`]);
  const notes = Array.isArray(ee.notes) ? ee.notes.map((n) => text(n)).filter(Boolean) : [];
  if (notes.length) rows.push(["Notes", notes.join(" · ")]);
  return rows;
}

/** The energy split by component: [{key, label, kwh, share}] (share of the components' sum). */
export function energySplit(ee) {
  const parts = COMPONENTS.map(([key, label]) => ({ key, label, kwh: num(ee?.[`${key}_energy_kwh`]) }));
  const total = parts.reduce((s, p) => s + (p.kwh !== null && p.kwh > 0 ? p.kwh : 0), 0);
  if (!(total > 0)) return null;
  return parts.map((p) => ({ ...p, share: p.kwh !== null && p.kwh > 0 ? p.kwh / total : 0,
                              text: `${formatShare(p.kwh ?? 0, total)} · ${formatEnergyKwh(p.kwh)}` }));
}
