// The verdict as one plain sentence: what the run was, what it cost, and what the chain
// says about it. A pure function of (record, verdict facts), so the browser tests can run
// it over many cases. Every record field is untrusted text: the caller renders the
// sentence with textContent, and only a VALID verdict may present the figures as the
// anchored ones; every other outcome says in words that they are not verified.
import { MISSING, formatCo2Kg, formatDate, formatDurationS, formatEnergyKwh, formatNumber } from "./units.js";

const MAX_NAME = 80;  // a name is part of a sentence, not a paragraph

const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const known = (v) => typeof v === "string" && v.trim() !== "" && v.trim().toLowerCase() !== "unknown";
const clip = (s) => (s.length > MAX_NAME ? `${s.slice(0, MAX_NAME - 1)}…` : s);

/** What the run was: "ResNet18 on CIFAR-10, 1 epoch" (the experiment's name if no model). */
export function describeRun(record) {
  const ex = isObj(record?.experiment) ? record.experiment : {};
  const model = known(ex.model_name) ? clip(ex.model_name.trim()) : null;
  const data = known(ex.dataset_name) ? clip(ex.dataset_name.trim()) : null;
  let text = model && data ? `${model} on ${data}` : model || data
    || (known(ex.name) ? clip(ex.name.trim()) : "An unnamed run");
  const epochs = record?.training?.epochs;
  if (Number.isInteger(epochs) && epochs > 0) text += `, ${formatNumber(epochs)} epoch${epochs === 1 ? "" : "s"}`;
  const status = record?.outcome?.status;
  if (status === "failed") text += " (the run failed)";
  else if (status === "interrupted") text += " (the run was interrupted)";
  return text;
}

/** What it cost: "60 mWh, 28.6 mg CO2e in 8 s on 27 Nov 2026". */
export function describeFigures(record) {
  const ee = isObj(record?.energy_emissions) ? record.energy_emissions : {};
  const when = formatDate(record?.timestamps?.start_time);
  const duration = formatDurationS(ee.duration_seconds);
  const tail = `${duration !== MISSING ? ` in ${duration}` : ""}${when !== MISSING ? ` on ${when}` : ""}`;
  if (ee.measurement_status === "failed" || typeof ee.energy_kwh !== "number") {
    return `energy not measured (the measurement failed)${tail}`;
  }
  return `${formatEnergyKwh(ee.energy_kwh)}, ${formatCo2Kg(ee.co2_kg)}${tail}`;
}

/** What a trust level means, in a few plain words (the full note is in the evidence). */
export function trustWords(trust, chainId = null) {
  if (trust === "public") return `public: anyone can check it with any node of chain ${chainId ?? MISSING}`;
  if (trust === "private network") return "private network: evidence only for those who trust that network";
  return "local only: proves nothing to anyone but its author";
}

function anchoredWhen(facts) {
  const ts = Number.isFinite(facts.timestamp) && facts.timestamp > 0
    ? formatDate(new Date(facts.timestamp * 1000).toISOString()) : MISSING;
  let text = facts.batch ? "anchored in a batch" : "anchored";
  if (ts !== MISSING) text += ` on ${ts}`;
  if (Number.isInteger(facts.blockNumber)) text += ` at block ${facts.blockNumber.toLocaleString("en-US")}`;
  return text;
}

const NOT_VERIFIED = "these figures are not verified";

/**
 * The sentence. `facts` is what the verification found:
 * - a verdict: {status, reason, trust, chainId, timestamp (s), blockNumber, batch, devKey};
 * - an error: {error: key} (the page shows the error itself beside the sentence);
 * - null: not verified (yet).
 */
export function summarySentence(record, facts) {
  const run = describeRun(record);
  const figures = describeFigures(record);
  if (facts && facts.status === "VALID") {
    const dev = facts.devKey ? "; the submitter is a well-known development key" : "";
    return `${run}: ${figures}; unchanged since it was ${anchoredWhen(facts)} (${trustWords(facts.trust, facts.chainId)}${dev}).`;
  }
  const claimed = `${run}: the file says ${figures}`;
  if (!facts) return `${claimed}; not checked against a chain yet, so ${NOT_VERIFIED}.`;
  if (facts.error) return `${claimed}; it could not be verified, so ${NOT_VERIFIED}.`;
  switch (facts.status) {
    case "TAMPERED":
      return `${claimed}; TAMPERED: the file differs from what was ${anchoredWhen(facts)}, so ${NOT_VERIFIED}.`;
    case "NOT_FOUND":
      return facts.reason === "not_anchored_yet"
        ? `${claimed}; NOT FOUND: it was never anchored (its proof is still pending), so ${NOT_VERIFIED}.`
        : `${claimed}; NOT FOUND: nothing on chain vouches for it, so ${NOT_VERIFIED}.`;
    case "SUBMITTER_MISMATCH":
      return `${claimed}; SUBMITTER MISMATCH: it is not vouched for by the expected address, so ${NOT_VERIFIED}.`;
    default:
      return `${claimed}; ${NOT_VERIFIED}.`;
  }
}
