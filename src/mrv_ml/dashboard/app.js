// MRV verification dashboard. Everything read from a file or the chain is untrusted and is
// rendered with textContent only. The verdict itself is decided by verdict.js (the same
// function as Python's, run over the same table of cases); this module reads the files,
// reads the chain evidence decide() asks for, and shows the outcome.
import { ethers } from "./vendor/ethers.min.js";
import { REGISTRY_ABI } from "./config.js";
import { canonicalize, sha256Hex } from "./jcs.js";
import { InputError, parseStrict } from "./strictjson.js";
import { checkRecord, classify } from "./record.js";
import { parseProof } from "./proof.js";
import { DEV_KEY_NOTE, TRUST_NOTES, ZERO_HASH, anchoredProof, decide, expectedSubmitter, merkleRoot, mode,
         reasonText, signedBy, trustOf } from "./verdict.js";
import { DEV_ADDRESSES, DEV_CHAIN_IDS, NETWORK_CHAIN_IDS, PUBLIC_CHAINS, REGISTRY_CODE_HASHES } from "./chains.js";
import { summarySentence } from "./summary.js";
import { energySplit, qualityRows, qualityShort } from "./quality.js";
import { legendOf, powerChart, shareBar } from "./chart.js";
import { MISSING, formatCo2Kg, formatDatetime, formatDurationS, formatEnergyKwh, formatIntensityGPerKwh,
         formatNumber, formatPowerW } from "./units.js";
import { startBundle } from "./bundle.js";
import { detectSource, recordUrls, resolveId, showExplorer } from "./explorer.js";

const MAX_FILE_BYTES = 5 * 1024 * 1024;
const LOG_RANGE_BLOCKS = 10000;  // what public providers commonly allow per eth_getLogs
const MIN_LOG_RANGE_BLOCKS = 125;
const ID_RE = /^MRV-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const $ = (id) => document.getElementById(id);

const state = {
  server: null, provider: null, explicitRegistry: null, defaultRegistry: null, network: null,
  explorer: null, embedded: false, linkEndpoint: null, pinnedByLink: false, record: null, recordName: null, recordHash: null, proof: null, proofName: null,
};

function setStatus(text, bad = false) {
  $("status").textContent = text;
  $("status").classList.toggle("bad", bad);
}
// Errors the reader can only fix in the connection settings open them.
const CONNECTION_ERRORS = ["chain_unreachable", "chain_read_failed", "config", "endpoint_needed", "proof_chain_mismatch",
                           "proof_registry_mismatch", "no_contract", "not_a_registry", "anchor_not_on_chain"];
function showError(text, key = "") {
  $("error").textContent = text;
  $("error").dataset.key = key;
  $("error").hidden = !text;
  if (text && CONNECTION_ERRORS.includes(key)) $("conn").open = true;
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
    const typed = $("contract").value.trim();
    state.explicitRegistry = null;
    state.defaultRegistry = state.server?.registry_address || null;
    if (mode === "bridge") {
      if (!state.server) throw new Error("this page is not served by `mrv serve`; use an RPC URL");
      const cfg = state.server;
      const url = cfg.bridge ? new URL(cfg.rpc_path, location.href).href : cfg.rpc_url;
      state.provider = new ethers.JsonRpcProvider(url, undefined, { staticNetwork: true, batchMaxCount: 1 });
      state.network = cfg.network;
      state.explorer = cfg.explorer_url;
      state.embedded = cfg.network === "local" && cfg.bridge;
    } else if (mode === "rpc") {
      const url = $("rpc-url").value.trim();
      if (!/^https?:\/\//.test(url)) throw new Error("enter an http(s) RPC URL");
      state.provider = new ethers.JsonRpcProvider(url, undefined, { staticNetwork: true, batchMaxCount: 1 });
      state.network = new URLSearchParams(location.search).get("network") || "custom";
      state.explorer = null;
      state.embedded = false;
      state.defaultRegistry = null;
      state.explicitRegistry = typed || null;
    } else {
      if (!window.ethereum) throw new Error("no browser wallet (window.ethereum) found");
      state.provider = new ethers.BrowserProvider(window.ethereum);
      state.network = "wallet";
      state.embedded = false;
      state.explicitRegistry = typed || null;
    }
    const registry = state.explicitRegistry || state.defaultRegistry;
    if (registry && !ethers.isAddress(registry)) throw new Error("the registry contract address is not an address");
    const net = await withTimeout(state.provider.getNetwork(), "RPC unreachable");
    const block = await withTimeout(state.provider.getBlockNumber(), "RPC unreachable");
    const expected = state.server && mode === "bridge" ? state.server.chain_id : null;
    if (expected && Number(net.chainId) !== Number(expected)) {
      throw new Error(`wrong network: chain id ${net.chainId}, expected ${expected}`);
    }
    // A link naming a network must not show verdicts from another chain under its name.
    const named = new URLSearchParams(location.search).get("network");
    const namedChain = named ? NETWORK_CHAIN_IDS[named.toLowerCase()] : undefined;
    if (namedChain !== undefined && mode !== "bridge" && Number(net.chainId) !== namedChain) {
      throw new Error(`the link says network ${named} (chain ${namedChain}), but the endpoint is chain ${net.chainId}`);
    }
    if (named && namedChain === undefined && mode !== "bridge") state.network = `custom (the link says "${named}")`;
    if (registry && (await state.provider.getCode(registry)) === "0x") {
      throw new Error(`no contract at ${registry} on chain ${net.chainId}`);
    }
    const where = registry ? ` · registry ${registry}` : " · registry: from each record's proof";
    const trusting = state.linkEndpoint && mode === "rpc" && $("rpc-url").value.trim() === state.linkEndpoint
      ? ` · trusting the endpoint from the link: ${state.linkEndpoint}` : "";
    setStatus(`Connected: ${state.network} · chain id ${net.chainId} · latest block ${block}${where}${trusting}`);
    return true;
  } catch (e) {
    state.provider = null;
    setStatus(`Not connected: ${friendly(e)}`, true);
    $("conn").open = true;  // only the reader can fix this
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

// --- files -----------------------------------------------------------------------------
// Files may come together or one by one, in any order: each is recognised as a record or a
// proof by its content. A record arriving alone keeps the proof already there only if that
// proof names it; a proof arriving alone keeps the record.
async function readJson(file) {
  if (file.size > MAX_FILE_BYTES) throw new InputError("too_large", `${file.name} is larger than 5 MB`);
  return parseStrict(new Uint8Array(await file.arrayBuffer()), file.name);
}

async function takeRecord(value, problems, name) {
  checkRecord(value, problems, name);
  state.record = value;
  state.recordName = name;
  state.recordHash = await sha256Hex(canonicalize(value));
  $("mrv-id").value = value.mrv_id;
}

function clearRecord() {
  state.record = state.recordName = state.recordHash = state.facts = null;
  $("record-view").hidden = true;
  $("verdict").hidden = true;
  $("input").classList.remove("compact");
}

async function onFiles(files) {
  showError("");
  let record = null, proof = null;
  try {
    for (const file of files) {
      const read = await readJson(file);
      if (classify(read.value) === "proof") {
        proof = { parsed: parseProof(read.value, file.name), name: file.name };
      } else {
        record = { ...read, name: file.name };
      }
    }
    if (record) {
      clearRecord();
      await takeRecord(record.value, record.problems, record.name);
      if (!proof && state.proof && state.proof.mrvId !== state.record.mrv_id) {
        state.proof = state.proofName = null;
      }
    }
    if (proof) {
      state.proof = proof.parsed;
      state.proofName = proof.name;
    }
  } catch (e) {
    // Nothing of an unusable drop is taken, and no earlier verdict stays on screen.
    $("verdict").hidden = true;
    $("record-view").hidden = true;
    $("input").classList.remove("compact");
    renderFiles();
    showError(friendly(e), e.key || "bad_input");
    return;
  }
  renderFiles();
  if (state.record) await verify();
}

function renderFiles() {
  const lines = [];
  let key = "";
  if (state.record) lines.push(`Record: ${state.recordName} (${state.record.mrv_id})`);
  if (state.proof) {
    const note = state.record ? "" : " — this is a proof file; now add its record";
    lines.push(`Proof: ${state.proofName} (for ${state.proof.mrvId})${note}`);
    if (!state.record) key = "is_proof_file";
  }
  $("files").textContent = lines.join("\n") || "No file yet.";
  $("files").dataset.key = key;
  renderAnchors();
}

// The proof's RFC 3161 timestamps, each listed with what it states, none counted: checking
// one needs a CMS signature and an X.509 chain to a root the reader trusts, and the page
// has no vendored library for that (PKI.js is not bundled). The verdict is the chain's alone.
function renderAnchors() {
  const stamps = state.proof?.timestamps ?? [];
  $("anchors").hidden = stamps.length === 0;
  $("anchors").dataset.count = String(stamps.length);
  if (!stamps.length) return;
  const stem = (state.recordName || "RECORD.json");
  $("anchors-note").textContent = `Not checked here: this page cannot verify RFC 3161 timestamps (that needs a CMS ` +
    `signature and a certificate chain checked against a root you trust, and no library for it is part of the page), ` +
    `so it neither trusts them nor lets them change the verdict, which is the chain anchor's alone. Check them with: ` +
    `mrv verify ${stem} --tsa-root ROOT.pem`;
  dl("anchor-list", stamps.map((t, i) => [`RFC 3161 timestamp ${i + 1}`,
    `${t.tsaName || "an unnamed authority"} (${t.tsaUrl}) states ${t.genTime || "no time"}: not checked here`]));
}

// --- reading the evidence decide() asks for ---------------------------------------------
function registryFor(ev) {
  const proof = anchoredProof(ev);
  const address = state.explicitRegistry || proof?.anchor.contractAddress || state.defaultRegistry;
  if (!address) throw new InputError("config", "no registry address: enter the contract, or add the record's proof file");
  return ethers.getAddress(address);
}

const hex = (h) => h.toLowerCase().replace(/^0x/, "");

function leafOf(recordHash) {
  return ethers.keccak256(ethers.keccak256("0x" + recordHash));
}

function merkleCheck(root, recordHash, path) {
  let node = leafOf(recordHash);
  for (const sibling of path) {
    const [a, b] = [node, sibling].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
    node = ethers.keccak256(ethers.concat([a, b]));
  }
  return node.toLowerCase() === root.toLowerCase();
}

function chainKind(chainId) {
  if (state.embedded) return "embedded";
  if (String(chainId) in PUBLIC_CHAINS) return "public";
  return DEV_CHAIN_IDS.includes(chainId) ? "dev" : "other";
}

// Where log queries start: the registry's deployment block, as the proof says.
function fromBlock(ev) {
  const a = anchoredProof(ev)?.anchor;
  return a && a.registryBlock != null && a.contractAddress.toLowerCase() === ev.registryAddress.toLowerCase()
    ? a.registryBlock : 0;
}

// Logs in ranges a provider accepts: at most LOG_RANGE_BLOCKS, halved when refused.
async function queryLogs(reg, filter, first) {
  const latest = await state.provider.getBlockNumber();
  const out = [];
  let size = LOG_RANGE_BLOCKS;
  for (let block = first; block <= latest;) {
    const end = Math.min(block + size - 1, latest);
    try {
      out.push(...await reg.queryFilter(filter, block, end));
      block = end + 1;
    } catch (e) {
      if (size <= MIN_LOG_RANGE_BLOCKS) throw e;
      size = Math.max(Math.floor(size / 2), MIN_LOG_RANGE_BLOCKS);
    }
  }
  return out;
}

const asRegistration = (log) => ({
  submitter: log.args.submitter, timestamp: Number(log.args.timestamp),
  txHash: log.transactionHash, blockNumber: log.blockNumber,
});

async function read(ev, need) {
  if (need === "chain") {
    const registry = registryFor(ev);
    const chainId = Number((await state.provider.getNetwork()).chainId);
    const code = await state.provider.getCode(registry);
    return { ...ev, chainId, chainKind: chainKind(chainId), registryAddress: registry,
             registryHasCode: code !== "0x",
             registryIsRelease: REGISTRY_CODE_HASHES.includes(ethers.keccak256(code).toLowerCase()) };
  }
  if (need === "signature") {
    // The same message as Python's mrv_ml.signing.signing_message (EIP-191 personal_sign).
    const message = `mrv-ml record\nID: ${ev.recordMrvId}\nsha256-jcs: ${ev.recordHash}`;
    let recovered = "";
    try { recovered = ethers.verifyMessage(message, ev.proof.signature.signature); } catch { recovered = ""; }
    return { ...ev, recoveredSigner: recovered };
  }
  if (need === "anchor_block") {
    const a = anchoredProof(ev).anchor;
    let ok;
    if (a.blockHash) {
      const block = await state.provider.getBlock(a.blockNumber);
      ok = block != null && block.hash.toLowerCase() === a.blockHash.toLowerCase();
    } else {
      const receipt = await state.provider.getTransactionReceipt(a.txHash);
      ok = receipt != null && receipt.blockNumber === a.blockNumber;
    }
    return { ...ev, anchorBlockOk: ok };
  }
  const reg = new ethers.Contract(ev.registryAddress, REGISTRY_ABI, state.provider);
  const expected = expectedSubmitter(ev);
  const local = "0x" + ev.recordHash;
  if (need === "entry") {
    const [h, ts] = await reg.getMRVHashBy(ev.mrvId, expected);
    return { ...ev, entry: { hash: hex(h), timestamp: Number(ts) } };
  }
  if (need === "first") {
    const [h, ts, first] = await reg.getMRVHash(ev.mrvId);
    return { ...ev, first: { hash: hex(h), timestamp: Number(ts), submitter: first } };
  }
  if (need === "hash_registrants") {
    const logs = await queryLogs(reg, reg.filters.MRVRegistered(ethers.id(ev.mrvId), null, local), fromBlock(ev));
    return { ...ev, hashRegistrants: logs.map(asRegistration) };
  }
  const root = merkleRoot(ev);
  const path = anchoredProof(ev).anchor.merkle.proof;
  if (need === "merkle") return { ...ev, merkleOk: merkleCheck(root, ev.recordHash, path) };
  if (need === "batch") {
    const [ts, count] = await reg.getBatch(root, expected);
    const out = { ...ev, batch: { timestamp: Number(ts), leafCount: Number(count) } };
    if (out.batch.timestamp !== 0) out.registryMerkleOk = await reg.verifyBatchProof(root, expected, local, path);
    return out;
  }
  if (need === "root_anchorers") {
    const logs = await queryLogs(reg, reg.filters.BatchAnchored(root), fromBlock(ev));
    return { ...ev, rootAnchorers: logs.map(asRegistration) };
  }
  throw new Error(`decide() asked for unknown evidence ${need}`);
}

async function transactionOf(ev, registration) {
  if (registration.txHash) return registration.txHash;
  const anchor = anchoredProof(ev)?.anchor;
  if (anchor?.txHash && anchor.chainId === ev.chainId &&
      anchor.submitter.toLowerCase() === registration.submitter.toLowerCase()) return anchor.txHash;
  if (merkleRoot(ev)) {
    try {
      const withLogs = ev.rootAnchorers ? ev : await read(ev, "root_anchorers");
      const found = withLogs.rootAnchorers.find((a) => a.submitter.toLowerCase() === registration.submitter.toLowerCase());
      if (found) return found.txHash;
    } catch { /* a node refusing log queries: the verdict stands without the tx */ }
  }
  return null;
}

function errorText(key, ev) {
  const anchor = anchoredProof(ev)?.anchor;
  const stem = (state.recordName || "record.json").replace(/\.json$/i, "");
  switch (key) {
    case "proof_of_another_record":
      return `${state.proofName}: this proof is for ${ev.proof.mrvId}, not for the record ${ev.recordMrvId}`;
    case "proof_chain_mismatch":
      return `the proof says chain ${anchor.chainId} (${anchor.network || "unnamed network"}), but the connected node is chain ${ev.chainId}: connect to a node of chain ${anchor.chainId}`;
    case "proof_registry_mismatch":
      return `the proof names registry ${anchor.contractAddress}, but the page is set to registry ${ev.registryAddress}`;
    case "no_contract":
      return `no contract at ${ev.registryAddress} on chain ${ev.chainId}: nothing there can have anchored ${ev.recordMrvId}`;
    case "not_a_registry":
      return `the contract at ${ev.registryAddress} on chain ${ev.chainId} is not an MRVRegistry (its code is not a released registry's): its answers prove nothing`;
    case "local_only_elsewhere":
      return `${ev.recordMrvId} was anchored on its author's private local chain, not this one: it cannot be checked here, and it is evidence for nobody but its author; ask for a publicly anchored proof`;
    case "anchor_not_on_chain":
      return `chain ${ev.chainId} does not hold the proof's anchoring block ${anchor.blockNumber} (another instance of this chain, or the block was reorganised away): its registry cannot speak for this proof`;
    case "proof_needed":
      return `${ev.mrvId} is not registered under its ID on this chain; if it was anchored in a batch, verification needs its proof file (${stem}.proof.json): add it`;
    case "bad_signature":
      return `the proof says ${ev.proof.signature.signer} signed ${ev.recordMrvId}, but its signature is not theirs over this record's fingerprint: the signature cannot be trusted`;
    case "evidence_conflict":
      return `the registry's verifyBatchProof and this page's Merkle check disagree on ${ev.recordMrvId}; please report this`;
    default:
      return key;
  }
}

// --- verification ----------------------------------------------------------------------
// Each verification is numbered: one that a newer input (another file, a proof) overtook
// while it waited on the chain shows nothing, so an old verdict never lands beside, or
// over, the newer input's.
let verifications = 0;

async function verify() {
  const run = ++verifications;
  const overtaken = () => run !== verifications;
  if (!state.record) { showError("choose a record file first", "no_record"); return; }
  const connected = state.provider || (await connect());
  if (overtaken()) return;
  if (!connected) {
    showError("cannot verify: not connected to a chain (see Connection)", "chain_unreachable");
    $("verdict").hidden = true;
    renderRecord(state.record, null, { error: "chain_unreachable" });
    return;
  }
  const pin = $("submitter").value.trim();
  if (pin && !ethers.isAddress(pin)) { showError(`invalid submitter address ${pin.slice(0, 60)}`, "config"); return; }
  const signerPin = $("signer").value.trim();
  if (signerPin && !ethers.isAddress(signerPin)) { showError(`invalid signer address ${signerPin.slice(0, 60)}`, "config"); return; }
  let ev = { mrvId: $("mrv-id").value.trim() || state.record.mrv_id, recordMrvId: state.record.mrv_id,
             recordHash: state.recordHash, proof: state.proof, pin: pin ? ethers.getAddress(pin) : null,
             signerPin: signerPin ? ethers.getAddress(signerPin) : null };
  let decision;
  try {
    for (decision = decide(ev); decision.need; decision = decide(ev)) {
      ev = await read(ev, decision.need);
      if (overtaken()) return;
    }
  } catch (e) {
    if (overtaken()) return;
    showError(`verification failed: ${friendly(e)}`, e.key || "chain_read_failed");
    $("verdict").hidden = true;  // never an earlier verdict beside this error
    renderRecord(state.record, null, { error: e.key || "chain_read_failed" });
    return;
  }
  if (decision.error) {
    showError(errorText(decision.error, ev), decision.error);
    $("verdict").hidden = true;
    renderRecord(state.record, null, { error: decision.error });
    return;
  }
  showError("");
  const reg = decision.registration;
  const tx = reg ? await transactionOf(ev, reg) : null;
  let head = null, block = null;
  try {
    if (tx) block = (await state.provider.getTransactionReceipt(tx))?.blockNumber ?? null;
    const finalized = await state.provider.getBlock("finalized").catch(() => null);
    head = { latest: await state.provider.getBlockNumber(), finalized: finalized?.number ?? null };
  } catch { head = null; }
  if (overtaken()) return;
  const facts = renderVerdict(ev, decision, tx, head, block);
  renderRecord(state.record, decision.status, facts);
}

// Icons from the text range (U+2714, U+2718, U+26A0) so they render without an emoji font.
const VERDICTS = {
  VALID: ["\u2714", "VALID", "valid", "The record is identical to the one anchored on chain."],
  TAMPERED: ["\u2718", "TAMPERED", "tampered", "The record differs from the anchored fingerprint."],
  NOT_FOUND: ["\u26A0", "NOT FOUND", "notfound", "No registration as its proof describes."],
  SUBMITTER_MISMATCH: ["\u26A0", "SUBMITTER MISMATCH", "mismatch", "Registered, but not by the expected submitter."],
};

function utc(ts) {
  return ts ? new Date(ts * 1000).toISOString().replace(".000Z", "Z") : "—";
}

function renderVerdict(ev, d, tx, head = null, registrationBlock = null) {
  const [icon, title, cls, text] = VERDICTS[d.status];
  const batch = mode(ev) === "batch";
  const box = $("verdict");
  box.className = `card verdict ${cls}`;
  box.dataset.verdict = d.status;
  box.dataset.reason = d.reason;
  const iconEl = document.createElement("span");
  iconEl.className = "icon";
  iconEl.setAttribute("aria-hidden", "true");
  iconEl.textContent = icon;
  $("verdict-title").replaceChildren(iconEl, document.createTextNode(` ${title}${batch ? " (batch)" : ""}`));
  const expected = expectedSubmitter(ev);
  const reg = d.registration;
  const fields = { mrv_id: ev.mrvId, submitter: reg?.submitter, expected, merkle_root: merkleRoot(ev),
                   signer: signedBy(ev), signer_pin: ev.signerPin };
  $("verdict-detail").textContent = `${text.replace(/\.$/, ":")} ${reasonText(d.reason, fields)}.`;
  const rows = [["MRV ID", ev.mrvId], ["Record hash (SHA-256, RFC 8785)", ev.recordHash]];
  if (batch) rows.push(["Merkle root (anchored)", reg ? merkleRoot(ev) : "—"]);
  else rows.push(["On-chain hash", reg?.hash && reg.hash !== ZERO_HASH ? reg.hash : "—"]);
  rows.push(["Registered", utc(reg?.timestamp)], ["Submitter", reg?.submitter || "—"]);
  if (expected) {
    const how = ev.pin ? (state.pinnedByLink ? "pinned by the link" : "pinned") : "from the proof";
    rows.push(["Expected submitter", `${expected} (${how})`]);
  }
  // decide() checked the signature before any verdict that rests on it
  const signer = ev.recoveredSigner ? signedBy(ev) : null;
  if (signer || ev.signerPin) rows.push(["Signed by", signer ? `${signer} (EIP-191 over this record's ID and fingerprint)` : "nobody (no signature)"]);
  if (ev.signerPin && !(signer && signer.toLowerCase() === ev.signerPin.toLowerCase())) rows.push(["Expected signer", ev.signerPin]);
  if (tx) {
    const href = state.explorer ? `${state.explorer.replace(/\/$/, "")}/tx/${tx}` : null;
    rows.push(["Transaction", tx, href && /^https?:\/\//.test(href) ? href : null]);
  }
  rows.push(["Network", `${state.network || "—"} (chain ${ev.chainId})`], ["Registry", ev.registryAddress || "—"]);
  const devKey = !!reg?.submitter && DEV_ADDRESSES.includes(reg.submitter.toLowerCase());
  const trust = trustOf(ev.chainKind, devKey);
  let note = TRUST_NOTES[trust].replace("{chain_id}", String(ev.chainId));
  if (trust !== "local only" && devKey) note += DEV_KEY_NOTE;
  rows.push(["Trust", `${trust}: ${note}`]);
  if (head && registrationBlock != null) {
    const final = head.finalized == null ? "" : registrationBlock <= head.finalized ? " (final)" : " (not final yet)";
    rows.push(["Confirmations", `${Math.max(head.latest - registrationBlock + 1, 0)}${final}`]);
  }
  box.dataset.trust = trust;
  dl("evidence", rows);
  const facts = { status: d.status, reason: d.reason, trust, chainId: ev.chainId, timestamp: reg?.timestamp ?? null,
                  blockNumber: registrationBlock, batch, devKey: devKey && trust !== "local only" };
  $("verdict-sentence").textContent = summarySentence(state.record, facts);
  box.hidden = false;
  return facts;
}

// --- the record --------------------------------------------------------------------------
// Every figure goes through units.js; every record field is untrusted text (textContent).
function fmt(v) {
  if (v === null || v === undefined || v === "") return MISSING;
  return typeof v === "number" ? formatNumber(v) : String(v);
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

function node(tag, cls, text = null) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== null) el.textContent = text;
  return el;
}

const UNTRUSTED = {
  TAMPERED: "Untrusted: these figures come from the file being verified, which differs from what was anchored.",
  NOT_FOUND: "Unverified: nothing on chain vouches for these figures.",
  SUBMITTER_MISMATCH: "Unverified: only another address vouches for these figures.",
};

function renderFigures(ee, mark) {
  const mean = typeof ee.energy_kwh === "number" && typeof ee.duration_seconds === "number" && ee.duration_seconds > 0
    ? ee.energy_kwh * 3.6e6 / ee.duration_seconds : null;
  const tiles = [[`Energy${mark}`, formatEnergyKwh(ee.energy_kwh)], [`CO₂e${mark}`, formatCo2Kg(ee.co2_kg)],
                 ["Duration", formatDurationS(ee.duration_seconds)], ["Mean power", formatPowerW(mean)],
                 ["Grid intensity", formatIntensityGPerKwh(ee.carbon_intensity_g_per_kwh)],
                 ["Measurement", qualityShort(ee)]];
  $("summary").replaceChildren(...tiles.map(([k, v]) => {
    const tile = node("div", "figure");
    tile.append(node("span", "figure-label", k), node("span", "figure-value", v));
    return tile;
  }));
}

// Drawn at the width it is shown, so its text stays legible on a phone.
function renderPower(r) {
  const box = $("power");
  const series = r.energy_emissions?.power_series;
  const width = Math.floor(box.clientWidth || $("record-view").clientWidth || 640);
  const chart = series ? powerChart(series, Math.min(width, 900)) : null;
  if (!chart) {
    const why = series ? "this record's power series is unusable (arrays of different lengths, values that are not powers, or over 1,000 points)"
      : r.schema_version === "1.0" ? "records of schema 1.0 carry no power series" : "this record carries no power series";
    box.replaceChildren(node("p", "note", `No power chart: ${why}; only the totals are shown.`));
    return;
  }
  const legend = node("ul", "legend");
  for (const entry of legendOf(series)) {
    const li = node("li", "");
    li.append(node("span", `swatch c-${entry.key}`), document.createTextNode(entry.text));
    legend.append(li);
  }
  const note = node("p", "note", `${series.downsampled === true ? "Downsampled" : "Intervals"} of ${typeof series.source === "string" ? series.source.slice(0, 120) : "the measurement"}; powers before PUE.`);
  box.replaceChildren(chart, legend, note);
}

function renderSplit(ee) {
  const parts = energySplit(ee);
  if (!parts) { $("split").replaceChildren(node("p", "note", "No energy split: the record has no component figures.")); return; }
  const legend = node("ul", "legend");
  for (const p of parts) {
    const li = node("li", "");
    li.dataset.component = p.key;
    li.append(node("span", `swatch c-${p.key}`), document.createTextNode(`${p.label} ${p.text}`));
    legend.append(li);
  }
  $("split").replaceChildren(shareBar(parts), legend);
}

function renderRecord(r, status, facts = null) {
  const trusted = status === "VALID";
  const mark = trusted ? "" : " (untrusted)";
  const ex = r.experiment || {}, ee = r.energy_emissions || {}, hw = r.hardware || {};
  const gpus = Array.isArray(hw.gpus) && hw.gpus.length ? hw.gpus.map((g) => g?.name ?? "GPU").join(", ") : "none";
  const outcome = r.outcome?.status === "failed" && r.outcome?.error_type ? `failed (${fmt(r.outcome.error_type)})` : fmt(r.outcome?.status);
  // Without a verdict card (an error, not verified), the sentence heads the record.
  $("record-sentence").textContent = status ? "" : summarySentence(r, facts);
  $("record-sentence").hidden = !!status;
  renderFigures(ee, mark);
  dl("quality", qualityRows(r));
  dl("run", [
    ["MRV ID", fmt(r.mrv_id)],
    ["Experiment", fmt(ex.name)], ["Model", fmt(ex.model_name)], ["Dataset", fmt(ex.dataset_name)],
    ["Framework", fmt(ex.framework)], ["Epochs", fmt(r.training?.epochs)], ["Outcome", outcome],
    ["CPU", `${fmt(hw.cpu_model)} (${fmt(hw.cpu_logical_cores)} logical cores)`],
    ["RAM", typeof hw.ram_gb === "number" ? `${formatNumber(hw.ram_gb)} GB` : MISSING], ["GPUs", gpus],
    ["Start", formatDatetime(r.timestamps?.start_time)], ["End", formatDatetime(r.timestamps?.end_time)],
    ["Record hash (SHA-256, RFC 8785)", state.recordHash],
  ]);
  const note = UNTRUSTED[status] || "Unverified: these figures could not be checked against the chain.";
  $("untrusted").textContent = trusted ? "" : note;
  $("untrusted").hidden = trusted;
  $("record-view").classList.toggle("untrusted", !trusted);
  $("raw").textContent = JSON.stringify(r, null, 2);
  $("record-view").hidden = false;
  $("input").classList.add("compact");
  state.shown = { r, status, facts };
  renderPower(r);  // after the view is shown: the chart is drawn at its width
  renderSplit(ee);
}

// --- wiring ----------------------------------------------------------------------------
function clearAll() {
  clearRecord();
  state.proof = state.proofName = null;
  $("mrv-id").value = "";
  showError("");
  renderFiles();
}

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
    const files = [...(e.dataTransfer?.files || [])];
    if (files.length) onFiles(files);
  });
  for (const el of [input, $("proof-file")]) {
    el.addEventListener("change", () => {
      const files = [...el.files];
      el.value = "";  // choosing the same file again must fire change again
      if (files.length) onFiles(files);
    });
  }
  $("submitter").addEventListener("input", () => { state.pinnedByLink = false; });
  $("verify").addEventListener("click", () => verify());
  $("clear").addEventListener("click", () => clearAll());
  $("connect").addEventListener("click", () => connect());
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => { if (state.shown && !$("record-view").hidden) renderPower(state.shown.r); }, 150);
  });
  $("conn-mode").addEventListener("change", () => {
    $("rpc-fields").hidden = $("conn-mode").value === "bridge";
  });
}

async function fetchJson(url) {
  const r = await fetch(url);
  if (!r.ok) return null;
  return parseStrict(new Uint8Array(await r.arrayBuffer()), url);
}

async function main() {
  wire();
  renderFiles();
  if (!window.MRV_BUNDLE) await loadServerConfig();  // a bundle (mrv bundle) has no server
  const q = new URLSearchParams(location.search);
  const source = window.MRV_BUNDLE ? null : await detectSource(state.server);  // store or registry
  if (q.get("view") === "explore") {  // the explorer (explorer.js); its own section only
    await showExplorer(source);
    document.body.dataset.ready = "1";
    return;
  }
  if (q.get("signer")) $("signer").value = q.get("signer");
  if (q.get("submitter")) {
    $("submitter").value = q.get("submitter");
    state.pinnedByLink = true;
  }
  if (q.get("rpc")) {
    state.linkEndpoint = q.get("rpc");
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
    if (source) {  // mrv serve's store (an ID or a unique prefix) or a registry's published records
      try {
        const full = await resolveId(source, id);
        $("mrv-id").value = full;
        const urls = recordUrls(source, full);
        const rec = await fetchJson(urls.record);
        if (!rec) throw new Error(`record ${full} is not in ${source.kind === "registry" ? "this registry" : "the local store"}`);
        let proof = await fetchJson(urls.proof);
        if (proof && urls.proofField) proof = proof.value?.[urls.proofField] ? { value: proof.value[urls.proofField] } : null;
        await takeRecord(rec.value, rec.problems, `${full}.json`);
        if (proof) { state.proof = parseProof(proof.value, `${full}.proof.json`); state.proofName = `${full}.proof.json`; }
        renderFiles();
        await verify();
      } catch (e) { showError(friendly(e), e.key || "bad_input"); }
    }
  }
  if (window.MRV_BUNDLE) {  // mrv bundle: the records come with the page; the reader gives the endpoint
    await startBundle(window.MRV_BUNDLE, q, async ({ record, proof }) => {
      try {
        clearAll();
        await takeRecord(record.value, record.problems, record.name);
        state.proof = parseProof(proof.value, proof.name);
        state.proofName = proof.name;
        renderFiles();
        await verify();
      } catch (e) { showError(friendly(e), e.key || "bad_input"); }
    }, async (url) => {
      $("conn-mode").value = "rpc"; $("rpc-url").value = url; $("rpc-fields").hidden = false;
      if ((await connect()) && state.record) await verify();
    });
  }
  document.body.dataset.ready = "1";
}

// Exposed for the hash-vector tests and the benchmark.
window.mrvJcs = { canonicalize, sha256Hex };
main();
