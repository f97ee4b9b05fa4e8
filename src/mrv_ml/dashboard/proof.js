// The proof sidecar, read as strictly as Python's proof.Proof.from_dict: every field a
// verdict relies on is checked, and a sidecar that fails is "malformed_proof", never a verdict.
import { InputError } from "./strictjson.js";

const HEX64 = /^[0-9a-f]{64}$/;
const BYTES32 = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const FORMAT = "openzeppelin-standard-merkle-tree-v1";
const MAX_MERKLE_DEPTH = 32;  // anchorBatch's leafCount is a uint32
const SIGNATURE_HEX = /^0x[0-9a-fA-F]{130}$/;
// As record/proof.py reads them: a few authorities' tokens, each bounded
const MAX_TIMESTAMPS = 16;
const MAX_TSR_BYTES = 65536;
const TSA_URL = /^https?:\/\/\S{1,500}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function bad(source, where, problem) {
  return new InputError("malformed_proof", `${source}: not a usable proof sidecar: ${where} ${problem}`);
}

function matching(value, re, source, where, what) {
  if (typeof value !== "string" || !re.test(value)) throw bad(source, where, `is not ${what}`);
  return value;
}

function optInt(data, name, source) {
  const v = data[name];
  if (v == null) return null;
  if (!Number.isInteger(v)) throw bad(source, `anchor.${name}`, "has the wrong type");
  return v;
}

function merklePart(m, source) {
  if (!isObj(m)) throw bad(source, "anchor.merkle", "is missing (a batch proof needs its Merkle part)");
  const fmt = m.format ?? FORMAT;
  const enc = m.leaf_encoding ?? ["bytes32"];
  if (fmt !== FORMAT || !Array.isArray(enc) || enc.length !== 1 || enc[0] !== "bytes32") {
    throw bad(source, "anchor.merkle", `uses an unsupported format ${JSON.stringify(String(fmt).slice(0, 40))}`);
  }
  const root = matching(m.root, BYTES32, source, "anchor.merkle.root", "a 32-byte hex value").toLowerCase();
  if (!Array.isArray(m.proof)) throw bad(source, "anchor.merkle.proof", "is not a list of hashes");
  if (m.proof.length > MAX_MERKLE_DEPTH) {
    throw bad(source, "anchor.merkle.proof", `has ${m.proof.length} hashes; a batch of at most 2^32 records needs at most ${MAX_MERKLE_DEPTH}`);
  }
  const path = m.proof.map((p, i) => matching(p, BYTES32, source, `anchor.merkle.proof[${i}]`, "a 32-byte hex value").toLowerCase());
  const leafCount = m.leaf_count == null ? null : m.leaf_count;
  return { root, proof: path, leafCount };
}

function signaturePart(sig, source) {
  if (sig == null) return null;
  if (!isObj(sig)) throw bad(source, "signature", "is not an object");
  if (typeof sig.scheme !== "string" || !sig.scheme) throw bad(source, "signature.scheme", "is missing");
  return { scheme: sig.scheme,
           signer: matching(sig.signer, ADDRESS, source, "signature.signer", "an address"),
           signature: matching(sig.signature, SIGNATURE_HEX, source, "signature.signature", "a 65-byte hex signature") };
}

// RFC 3161 tokens are listed, not checked: the page has no CMS/X.509 verifier (app.js says so)
function timestampsPart(list, source) {
  if (list == null) return [];
  if (!Array.isArray(list) || list.length > MAX_TIMESTAMPS) throw bad(source, "timestamps", `is not a list of at most ${MAX_TIMESTAMPS}`);
  return list.map((t, i) => {
    const where = `timestamps[${i}]`;
    if (!isObj(t) || t.kind !== "rfc3161") throw bad(source, where, "is not an rfc3161 timestamp");
    if (typeof t.tsa_url !== "string" || !TSA_URL.test(t.tsa_url)) throw bad(source, `${where}.tsa_url`, "is not an http(s) URL");
    if (typeof t.tsr !== "string" || t.tsr.length > Math.floor(MAX_TSR_BYTES * 4 / 3) + 4 ||
        t.tsr.length % 4 !== 0 || !BASE64.test(t.tsr)) throw bad(source, `${where}.tsr`, "is not base64 of at most 64 kB");
    const certificates = t.certificates ?? [];
    if (!Array.isArray(certificates) || certificates.length > 8 ||
        !certificates.every((c) => typeof c === "string" && c.length < 16384)) throw bad(source, `${where}.certificates`, "is not a list of PEM certificates");
    return { tsaUrl: t.tsa_url, tsaName: String(t.tsa_name ?? "").slice(0, 500), genTime: String(t.gen_time ?? "").slice(0, 64) };
  });
}

/** {mrvId, recordDigest, status, pendingReason, anchor: {...} | null, signature: {...} | null,
 *  timestamps: [{tsaUrl, tsaName, genTime}]} */
export function parseProof(data, source) {
  if (!isObj(data)) throw new InputError("malformed_proof", `${source}: not a proof sidecar: the JSON is not an object`);
  if (typeof data.mrv_id !== "string" || !data.mrv_id) throw bad(source, "mrv_id", "is missing");
  const digest = isObj(data.record_hash) ? data.record_hash.digest : null;
  if (typeof digest !== "string" || !HEX64.test(digest)) throw bad(source, "record_hash.digest", "is not a SHA-256 hex digest");
  if (data.status !== "pending" && data.status !== "anchored") throw bad(source, "status", "is not pending or anchored");
  let anchor = null;
  if (data.status === "anchored") {
    const a = data.anchor;
    if (!isObj(a)) throw bad(source, "anchor", "is missing although the status is anchored");
    if (a.mode !== "single" && a.mode !== "batch") throw bad(source, "anchor.mode", "is not single or batch");
    if (!Number.isInteger(a.chain_id) || a.chain_id <= 0) throw bad(source, "anchor.chain_id", "is not a chain id");
    if (a.tx_hash != null) matching(a.tx_hash, BYTES32, source, "anchor.tx_hash", "a transaction hash");
    if (a.block_hash != null) matching(a.block_hash, BYTES32, source, "anchor.block_hash", "a block hash");
    const blockNumber = optInt(a, "block_number", source);
    const registryBlock = optInt(a, "registry_block", source);
    if (blockNumber != null && registryBlock != null && registryBlock > blockNumber) {
      throw bad(source, "anchor.registry_block", `(${registryBlock}) is later than the anchoring block (${blockNumber})`);
    }
    anchor = {
      mode: a.mode, chainId: a.chain_id, network: typeof a.network === "string" ? a.network : null,
      contractAddress: matching(a.contract_address, ADDRESS, source, "anchor.contract_address", "an address"),
      submitter: matching(a.submitter, ADDRESS, source, "anchor.submitter", "an address"),
      txHash: a.tx_hash ?? null, blockNumber, blockHash: a.block_hash ?? null, registryBlock,
      merkle: a.mode === "batch" ? merklePart(a.merkle, source) : null,
    };
  }
  return { mrvId: data.mrv_id, recordDigest: digest, status: data.status,
           pendingReason: typeof data.pending_reason === "string" ? data.pending_reason : null, anchor,
           signature: signaturePart(data.signature, source), timestamps: timestampsPart(data.timestamps, source) };
}
