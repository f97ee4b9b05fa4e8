// MRV verification dashboard. Everything read from a file or the chain is untrusted and is
// rendered with textContent only.
import { ethers } from "./vendor/ethers.min.js";
import { REGISTRY_ABI } from "./config.js";
import { canonicalize, sha256Hex } from "./jcs.js";

const MAX_FILE_BYTES = 5 * 1024 * 1024;
const ID_RE = /^MRV-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const KNOWN_SCHEMAS = ["1.0"];
const $ = (id) => document.getElementById(id);

const state = { server: null, provider: null, address: null, network: null, explorer: null,
                record: null, localHash: null, proof: null };

function setStatus(text, bad = false) {
  $("status").textContent = text;
  $("status").classList.toggle("bad", bad);
}
function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

// --- connection ------------------------------------------------------------------------
async function loadServerConfig() {
  try {
    const r = await fetch("/api/config", { cache: "no-store" });
    if (r.ok) state.server = await r.json();
  } catch { state.server = null; }
}

async function connect() {
  const mode = $("conn-mode").value;
  state.provider = null;
  try {
    if (mode === "bridge") {
      if (!state.server) throw new Error("this page is not served by `mrv serve`; use an RPC URL");
      const cfg = state.server;
      const url = cfg.bridge ? new URL(cfg.rpc_path, location.href).href : cfg.rpc_url;
      state.provider = new ethers.JsonRpcProvider(url, undefined, { staticNetwork: true, batchMaxCount: 1 });
      state.address = cfg.registry_address;
      state.network = cfg.network;
      state.explorer = cfg.explorer_url;
    } else if (mode === "rpc") {
      const url = $("rpc-url").value.trim();
      if (!/^https?:\/\//.test(url)) throw new Error("enter an http(s) RPC URL");
      state.provider = new ethers.JsonRpcProvider(url, undefined, { staticNetwork: true, batchMaxCount: 1 });
      state.address = $("contract").value.trim();
      state.network = new URLSearchParams(location.search).get("network") || "custom";
      state.explorer = null;
    } else {
      if (!window.ethereum) throw new Error("no browser wallet (window.ethereum) found");
      state.provider = new ethers.BrowserProvider(window.ethereum);
      state.address = $("contract").value.trim() || state.server?.registry_address;
      state.network = "wallet";
    }
    if (!state.address || !ethers.isAddress(state.address)) {
      throw new Error("no valid registry contract address");
    }
    const net = await withTimeout(state.provider.getNetwork(), "RPC unreachable");
    const block = await withTimeout(state.provider.getBlockNumber(), "RPC unreachable");
    const expected = state.server && mode === "bridge" ? state.server.chain_id : null;
    if (expected && Number(net.chainId) !== Number(expected)) {
      throw new Error(`wrong network: chain id ${net.chainId}, expected ${expected}`);
    }
    const code = await state.provider.getCode(state.address);
    if (code === "0x") throw new Error(`no contract at ${state.address} on chain ${net.chainId}`);
    setStatus(`Connected: ${state.network} · chain id ${net.chainId} · latest block ${block} · registry ${state.address}`);
    return true;
  } catch (e) {
    state.provider = null;
    setStatus(`Not connected: ${friendly(e)}`, true);
    return false;
  }
}

function withTimeout(promise, message, ms = 8000) {
  return Promise.race([promise, new Promise((_, rej) => setTimeout(() => rej(new Error(message)), ms))]);
}
function friendly(e) {
  const msg = e?.shortMessage || e?.message || String(e);
  return /failed to fetch|ECONNREFUSED|network error/i.test(msg) ? "RPC unreachable" : msg;
}

// --- record ----------------------------------------------------------------------------
function validate(rec) {
  const problems = [];
  const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  if (!isObj(rec)) return ["the file is not a JSON object"];
  if (!KNOWN_SCHEMAS.includes(rec.schema_version)) {
    problems.push(`unknown schema_version ${JSON.stringify(rec.schema_version)}`);
  }
  if (typeof rec.mrv_id !== "string" || !ID_RE.test(rec.mrv_id)) problems.push("mrv_id missing or malformed");
  for (const k of ["experiment", "energy_emissions", "hardware", "timestamps"]) {
    if (!isObj(rec[k])) problems.push(`section ${k} missing`);
  }
  const ee = rec.energy_emissions;
  if (isObj(ee)) {
    for (const k of ["energy_kwh", "co2_kg"]) {
      if (ee[k] !== null && (typeof ee[k] !== "number" || ee[k] < 0)) problems.push(`energy_emissions.${k} must be a number ≥ 0 or null`);
    }
  }
  return problems;
}

async function readFile(file, what) {
  if (file.size > MAX_FILE_BYTES) throw new Error(`${what} is larger than 5 MB`);
  const text = await file.text();
  try { return JSON.parse(text); } catch (e) { throw new Error(`${what} is not valid JSON: ${e.message}`); }
}

async function loadRecord(rec, proof = null) {
  showError("");
  $("verdict").hidden = true;
  const problems = validate(rec);
  if (problems.length) throw new Error(`not a valid MRV record: ${problems.join("; ")}`);
  state.record = rec;
  state.localHash = await sha256Hex(canonicalize(rec));
  if (proof) state.proof = proof;
  $("mrv-id").value = rec.mrv_id;
  renderRecord(rec);
}

async function onRecordFile(file) {
  try {
    state.proof = null;
    await loadRecord(await readFile(file, "the record file"));
    await verify();
  } catch (e) {
    state.record = null;
    $("record-view").hidden = true;
    showError(friendly(e));
  }
}

function fmt(v, unit = "") {
  if (v === null || v === undefined || v === "") return "—";
  return typeof v === "number" ? `${v} ${unit}`.trim() : String(v) + (unit ? ` ${unit}` : "");
}

function dl(target, rows) {
  const el = $(target);
  el.replaceChildren();
  for (const [k, v, href] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    if (href) {
      const a = document.createElement("a");
      a.href = href; a.textContent = v; a.rel = "noopener noreferrer"; a.target = "_blank";
      dd.append(a);
    } else {
      dd.textContent = v;
    }
    el.append(dt, dd);
  }
}

function renderRecord(r) {
  const ex = r.experiment || {}, ee = r.energy_emissions || {}, hw = r.hardware || {};
  const methods = ee.methods && typeof ee.methods === "object"
    ? Object.entries(ee.methods).map(([k, m]) => `${k}: ${m?.method ?? "?"}${m?.measured ? " (measured)" : " (estimated)"}`).join(", ")
    : "—";
  const gpus = Array.isArray(hw.gpus) && hw.gpus.length ? hw.gpus.map((g) => g?.name ?? "GPU").join(", ") : "none";
  dl("summary", [
    ["MRV ID", fmt(r.mrv_id)],
    ["Experiment", fmt(ex.name)], ["Model", fmt(ex.model_name)], ["Dataset", fmt(ex.dataset_name)],
    ["Framework", fmt(ex.framework)],
    ["Energy", fmt(ee.energy_kwh, "kWh")], ["CO₂", fmt(ee.co2_kg, "kg")],
    ["Duration", fmt(ee.duration_seconds, "s")],
    ["Carbon intensity", fmt(ee.carbon_intensity_g_per_kwh, "g/kWh")],
    ["Country", fmt(ee.country_iso_code)],
    ["Measurement", `${fmt(ee.measurement_tool)} ${fmt(ee.measurement_tool_version)} · ${fmt(ee.measurement_status)}`],
    ["Methods", methods],
    ["CPU", `${fmt(hw.cpu_model)} (${fmt(hw.cpu_logical_cores)} logical cores)`],
    ["RAM", fmt(hw.ram_gb, "GB")], ["GPUs", gpus],
    ["Outcome", fmt(r.outcome?.status)],
    ["Start", fmt(r.timestamps?.start_time)], ["End", fmt(r.timestamps?.end_time)],
    ["Local hash (SHA-256, RFC 8785)", state.localHash],
  ]);
  $("raw").textContent = JSON.stringify(r, null, 2);
  $("record-view").hidden = false;
}

// --- verification ----------------------------------------------------------------------
async function verify() {
  if (!state.record) { showError("choose a record file first"); return; }
  if (!state.provider && !(await connect())) {
    showError("cannot verify: not connected to a chain (see Connection)");
    return;
  }
  const id = $("mrv-id").value.trim();
  const local = "0x" + state.localHash;
  const reg = new ethers.Contract(state.address, REGISTRY_ABI, state.provider);
  const anchor = state.proof?.anchor && typeof state.proof.anchor === "object" ? state.proof.anchor : null;
  const expected = anchor && ethers.isAddress(anchor.submitter) ? ethers.getAddress(anchor.submitter) : null;
  const ev = { status: null, onchain: null, timestamp: 0n, submitter: null, tx: anchor?.tx_hash || null, detail: "" };
  try {
    if (anchor?.mode === "batch" && expected && anchor.merkle) {
      const m = anchor.merkle;
      const [ts] = await reg.getBatch(m.root, expected);
      if (ts === 0n) {
        // Same rule as batch.py: anchored only by someone else, and the proof links the
        // record to that root -> SUBMITTER MISMATCH; otherwise NOT FOUND.
        const logs = await reg.queryFilter(reg.filters.BatchAnchored(m.root), 0, "latest");
        const other = logs.find((l) => l.args.submitter.toLowerCase() !== expected.toLowerCase());
        if (other && await reg.verifyBatchProof(m.root, other.args.submitter, local, m.proof)) {
          Object.assign(ev, { status: "SUBMITTER_MISMATCH", submitter: other.args.submitter,
                              timestamp: other.args.timestamp, tx: other.transactionHash,
                              detail: `Root ${m.root} was anchored only by ${other.args.submitter}, not by ${expected}.` });
        } else {
          ev.status = "NOT_FOUND"; ev.detail = "The batch root is not anchored by the expected submitter.";
        }
      } else {
        const ok = await reg.verifyBatchProof(m.root, expected, local, m.proof);
        ev.status = ok ? "VALID" : "TAMPERED"; ev.timestamp = ts; ev.submitter = expected;
        ev.onchain = `batch root ${m.root}`;
        ev.detail = ok ? "The record is a leaf of the anchored batch." : "The record's hash is not in the anchored batch.";
      }
    } else if (expected) {
      const [hash, ts] = await reg.getMRVHashBy(id, expected);
      if (ts === 0n) {
        // Same rule as verify.py: this exact hash registered by another address -> mismatch.
        const logs = await reg.queryFilter(reg.filters.MRVRegistered(ethers.id(id), null, local), 0, "latest");
        const other = logs.find((l) => l.args.submitter.toLowerCase() !== expected.toLowerCase());
        if (other) {
          Object.assign(ev, { status: "SUBMITTER_MISMATCH", onchain: local, submitter: other.args.submitter,
                              timestamp: other.args.timestamp, tx: other.transactionHash,
                              detail: `This hash is registered only by ${other.args.submitter}, not by the expected ${expected}.` });
        } else {
          ev.status = "NOT_FOUND"; ev.detail = `${expected} never registered ${id}.`;
        }
      } else {
        ev.onchain = hash; ev.timestamp = ts; ev.submitter = expected;
        ev.status = hash.toLowerCase() === local.toLowerCase() ? "VALID" : "TAMPERED";
      }
    } else {
      const [hash, ts, first] = await reg.getMRVHash(id);
      if (ts === 0n) ev.status = "NOT_FOUND";
      else if (hash.toLowerCase() === local.toLowerCase()) {
        Object.assign(ev, { status: "VALID", onchain: hash, timestamp: ts, submitter: first });
      } else {
        // The first registrant may be a squatter: look for this exact hash under the ID.
        const logs = await reg.queryFilter(reg.filters.MRVRegistered(ethers.id(id), null, local), 0, "latest");
        if (logs.length) {
          const l = logs[0];
          Object.assign(ev, { status: "VALID", onchain: local, timestamp: l.args.timestamp,
                              submitter: l.args.submitter, tx: l.transactionHash,
                              detail: `Registered by ${l.args.submitter}; the first registrant ${first} holds another hash.` });
        } else {
          Object.assign(ev, { status: "TAMPERED", onchain: hash, timestamp: ts, submitter: first });
        }
      }
    }
  } catch (e) {
    showError(`verification failed: ${friendly(e)}`);
    return;
  }
  renderVerdict(id, local, ev, expected);
}

// Icons from the text range (U+2714, U+2718, U+26A0) so they render without an emoji font.
const VERDICTS = {
  VALID: ["\u2714", "VALID", "valid", "The record is identical to the one anchored on chain."],
  TAMPERED: ["\u2718", "TAMPERED", "tampered", "The record differs from the anchored fingerprint."],
  NOT_FOUND: ["\u26A0", "NOT FOUND", "notfound", "No registration for this MRV ID on this registry."],
  SUBMITTER_MISMATCH: ["\u26A0", "SUBMITTER MISMATCH", "mismatch", "Registered, but not by the expected submitter."],
};

function renderVerdict(id, local, ev, expected) {
  const [icon, title, cls, text] = VERDICTS[ev.status];
  const box = $("verdict");
  box.className = `card verdict ${cls}`;
  box.dataset.verdict = ev.status;
  const iconEl = document.createElement("span");
  iconEl.className = "icon";
  iconEl.setAttribute("aria-hidden", "true");
  iconEl.textContent = icon;
  $("verdict-title").replaceChildren(iconEl, document.createTextNode(` ${title}`));
  $("verdict-detail").textContent = ev.detail ? `${text} ${ev.detail}` : text;
  const when = ev.timestamp && ev.timestamp !== 0n
    ? new Date(Number(ev.timestamp) * 1000).toISOString().replace(".000Z", "Z") : "—";
  const rows = [["MRV ID", id], ["Local hash", local], ["On-chain hash", ev.onchain || "—"],
                ["Registered", when], ["Submitter", ev.submitter || "—"]];
  if (expected) rows.push(["Expected submitter", expected]);
  if (ev.tx) {
    const href = state.explorer ? `${state.explorer.replace(/\/$/, "")}/tx/${ev.tx}` : null;
    rows.push(["Transaction", ev.tx, href && /^https?:\/\//.test(href) ? href : null]);
  }
  rows.push(["Network", state.network || "—"], ["Registry", state.address || "—"]);
  dl("evidence", rows);
  box.hidden = false;
}

// --- wiring ----------------------------------------------------------------------------
function wire() {
  const drop = $("drop"), input = $("file");
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    const f = e.dataTransfer?.files?.[0];
    if (f) onRecordFile(f);
  });
  input.addEventListener("change", () => { if (input.files[0]) onRecordFile(input.files[0]); input.value = ""; });
  $("proof-file").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    e.target.value = "";  // choosing the same file again must fire change again
    try {
      const proof = await readFile(f, "the proof file");
      if (proof === null || typeof proof !== "object" || Array.isArray(proof)) {
        throw new Error("the proof file is not a proof sidecar (not a JSON object)");
      }
      state.proof = proof;
      if (state.record) await verify();
    } catch (err) { showError(friendly(err)); }
  });
  $("verify").addEventListener("click", () => verify());
  $("connect").addEventListener("click", () => connect());
  $("conn-mode").addEventListener("change", () => {
    $("rpc-fields").hidden = $("conn-mode").value === "bridge";
  });
}

async function main() {
  wire();
  await loadServerConfig();
  const q = new URLSearchParams(location.search);
  if (q.get("rpc")) {
    $("conn-mode").value = "rpc";
    $("rpc-url").value = q.get("rpc");
    $("contract").value = q.get("contract") || "";
  } else if (state.server) {
    $("conn-mode").value = "bridge";
  } else if (window.ethereum) {
    $("conn-mode").value = "wallet";
  } else {
    $("conn-mode").value = "rpc";
  }
  $("rpc-fields").hidden = $("conn-mode").value === "bridge";
  if (q.get("contract")) $("contract").value = q.get("contract");
  await connect();
  const id = q.get("id");
  if (id) {
    $("mrv-id").value = id;
    if (state.server && ID_RE.test(id)) {
      try {
        const r = await fetch(`/api/records/${encodeURIComponent(id)}`);
        if (!r.ok) throw new Error(`record ${id} is not in the local store`);
        const rec = await r.json();
        const p = await fetch(`/api/records/${encodeURIComponent(id)}/proof`);
        await loadRecord(rec, p.ok ? await p.json() : null);
        await verify();
      } catch (e) { showError(friendly(e)); }
    }
  }
  document.body.dataset.ready = "1";
}

// Exposed for the hash-vector tests and the benchmark.
window.mrvJcs = { canonicalize, sha256Hex };
main();
