// The one formatter for every figure the page shows: the twin of Python's mrv_ml/units.py,
// held to the same table of cases (data/format_cases.json, run in Chromium by
// tests/unit/base/test_units.py). Three significant digits, SI prefixes; ties round away from zero
// on the exact binary value, which is what toPrecision does.

export const SIGNIFICANT_DIGITS = 3;
export const MISSING = "\u2014";

const ENERGY_KWH = [[["\u00b5Wh", 1e-9], ["mWh", 1e-6], ["Wh", 1e-3], ["kWh", 1], ["MWh", 1e3], ["GWh", 1e6]], "Wh"];
const MASS_KG = [[["\u00b5g", 1e-9], ["mg", 1e-6], ["g", 1e-3], ["kg", 1], ["t", 1e3], ["kt", 1e6]], "g"];
const POWER_W = [[["mW", 1e-3], ["W", 1], ["kW", 1e3], ["MW", 1e6]], "W"];
const DURATION_S = [[["s", 1], ["min", 60], ["h", 3600]], "s"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const finite = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

// x >= 0 to `digits` significant digits, as a Number (toPrecision rounds the exact value).
const roundSig = (x, digits = SIGNIFICANT_DIGITS) => (x === 0 ? 0 : Number(x.toPrecision(digits)));

// Plain digits: no exponent (values here are >= 0.001), thousands separated by commas.
function digits(x) {
  let text = x.toLocaleString("en-US", { useGrouping: false, maximumFractionDigits: 20 });
  const [whole, frac] = text.split(".");
  text = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return frac ? `${text}.${frac}` : text;
}

export function formatNumber(value, n = SIGNIFICANT_DIGITS) {
  const x = finite(value);
  if (x === null) return MISSING;
  const sign = x < 0 ? "-" : "", rounded = roundSig(Math.abs(x), n);
  if (rounded > 0 && rounded < 0.001) return `< ${sign}0.001`;
  return sign + digits(rounded);
}

function scaled(value, [units, zeroUnit]) {
  let x = finite(value);
  if (x === null) return MISSING;
  const sign = x < 0 ? "-" : "";
  x = Math.abs(x);
  if (x === 0) return `0 ${zeroUnit}`;
  let index = 0;
  units.forEach(([, size], i) => { if (x / size >= 1) index = i; });
  let rounded = roundSig(x / units[index][1]);
  if (rounded >= 1000 && index + 1 < units.length) {  // 999.7 Wh reads "1 kWh"
    index += 1;
    rounded = roundSig(x / units[index][1]);
  }
  if (rounded < 0.001) return `< ${sign}0.001 ${units[0][0]}`;
  return `${sign}${digits(rounded)} ${units[index][0]}`;
}

export const formatEnergyKwh = (kwh) => scaled(kwh, ENERGY_KWH);
export const formatMassKg = (kg) => scaled(kg, MASS_KG);
export function formatCo2Kg(kg) {
  const text = formatMassKg(kg);
  return text === MISSING ? text : `${text} CO2e`;
}
export const formatPowerW = (w) => scaled(w, POWER_W);
export const formatDurationS = (s) => scaled(s, DURATION_S);
export function formatIntensityGPerKwh(g) {
  const text = formatNumber(g);
  return text === MISSING ? text : `${text} g CO2e/kWh`;
}
export function formatShare(part, whole) {
  const p = finite(part), w = finite(whole);
  if (p === null || w === null || w <= 0) return MISSING;
  return `${formatNumber(100 * p / w)} %`;
}

// RFC 3339 with an explicit offset only: a time without one is no particular moment.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$/;
function utc(value) {
  if (typeof value !== "string" || !RFC3339.test(value)) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}
export function formatDate(value) {
  const d = utc(value);
  return d ? `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}` : MISSING;
}
export function formatDatetime(value) {
  const d = utc(value);
  if (!d) return MISSING;
  const two = (n) => String(n).padStart(2, "0");
  return `${formatDate(value)} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())} UTC`;
}

// By the Python function names, for the shared case table.
export const FORMATTERS = {
  format_number: formatNumber, format_energy_kwh: formatEnergyKwh, format_mass_kg: formatMassKg,
  format_co2_kg: formatCo2Kg, format_power_w: formatPowerW, format_duration_s: formatDurationS,
  format_intensity_g_per_kwh: formatIntensityGPerKwh, format_share: formatShare,
  format_date: formatDate, format_datetime: formatDatetime,
};
