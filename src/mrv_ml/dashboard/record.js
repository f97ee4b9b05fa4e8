// What a dropped file is, and whether a record is usable: the same checks, in the same
// order and with the same error keys, as Python's record.check_record_header and
// validate_record (the full JSON Schema stays Python's; the page checks the fields it shows).
import { InputError } from "./strictjson.js";

export const KNOWN_SCHEMAS = ["1.0", "1.1", "1.2"];
const ID_RE = /^MRV-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** "proof" for a proof sidecar, "record" for anything else (checked as a record). */
export function classify(value) {
  if (isObj(value) && ("proof_version" in value || ("record_hash" in value && !("schema_version" in value)))) {
    return "proof";
  }
  return "record";
}

/** Throws InputError unless `value` (with the parser's `problems`) is a usable record. */
export function checkRecord(value, problems, source) {
  if (!isObj(value)) {
    const kind = Array.isArray(value) ? "an array" : value === null ? "null" : `a ${typeof value}`;
    throw new InputError("not_a_record", `${source}: not an MRV record: the JSON is ${kind}, not an object`);
  }
  if (classify(value) === "proof") {
    throw new InputError("is_proof_file", `${source}: this is a proof file (for ${String(value.mrv_id).slice(0, 60)}), not a record`);
  }
  const missing = ["schema_version", "mrv_id"].filter((k) => !(k in value));
  if (missing.length) throw new InputError("not_a_record", `${source}: not an MRV record: no ${missing.join(" and no ")} field`);
  if (typeof value.schema_version !== "string") {
    throw new InputError("not_a_record", `${source}: not an MRV record: schema_version is not a string`);
  }
  if (!KNOWN_SCHEMAS.includes(value.schema_version)) {
    throw new InputError("unknown_schema_version", `${source}: schema_version ${JSON.stringify(value.schema_version)} is not known to this page (known: ${KNOWN_SCHEMAS.join(", ")})`);
  }
  if (problems.length) throw new InputError(problems[0].key, `${source}: ${problems[0].message}`);
  const bad = [];
  if (typeof value.mrv_id !== "string" || !ID_RE.test(value.mrv_id)) bad.push("mrv_id: not \"MRV-\" followed by a lowercase UUID version 4");
  for (const k of ["experiment", "energy_emissions", "hardware", "timestamps"]) {
    if (!isObj(value[k])) bad.push(`${k}: missing or not an object`);
  }
  const ee = value.energy_emissions;
  if (isObj(ee)) {
    for (const k of ["energy_kwh", "co2_kg"]) {
      if (ee[k] !== null && (typeof ee[k] !== "number" || ee[k] < 0)) bad.push(`energy_emissions.${k}: must be a number ≥ 0 or null`);
    }
  }
  if (bad.length) throw new InputError("schema", `${source}: ${bad[0]}`);
}
