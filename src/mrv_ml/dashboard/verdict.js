// The verdict, decided once: the same pure function as Python's mrv_ml/verification/verdict.py:decide,
// run over the same table (data/verdict_cases.json) in the browser tests. It reads nothing:
// when evidence is missing it answers {need}, and the caller reads exactly that.
// An outcome is a verdict {status, reason, registration} or an error {error: key}.

export const ZERO_HASH = "0".repeat(64);

const same = (a, b) => a != null && b != null && a.toLowerCase() === b.toLowerCase();
const verdict = (status, reason, registration = null) => ({ status, reason, registration });
const byOthers = (registrations, expected) => registrations.filter((r) => !same(r.submitter, expected));

/** The anchored proof, if the evidence has one. */
export function anchoredProof(ev) {
  return ev.proof && ev.proof.anchor ? ev.proof : null;
}

export function expectedSubmitter(ev) {
  return ev.pin || anchoredProof(ev)?.anchor.submitter || null;
}

export function mode(ev) {
  return anchoredProof(ev)?.anchor.mode || "single";
}

/** Who the proof says signed the record's fingerprint (checked in decide). */
export function signedBy(ev) {
  return ev.proof?.signature?.signer || null;
}

export function merkleRoot(ev) {
  return anchoredProof(ev)?.anchor.merkle?.root || null;
}

export function decide(ev) {
  const proof = anchoredProof(ev);
  if (ev.proof && ev.proof.mrvId !== ev.recordMrvId) return { error: "proof_of_another_record" };
  if (ev.chainId == null || ev.registryHasCode == null) return { need: "chain" };
  if (proof) {
    if (proof.anchor.chainId !== ev.chainId) return { error: "proof_chain_mismatch" };
    if (!same(proof.anchor.contractAddress, ev.registryAddress)) return { error: "proof_registry_mismatch" };
  }
  if (!ev.registryHasCode) return { error: "no_contract" };
  if (!ev.registryIsRelease) return { error: "not_a_registry" };  // anyone can deploy a "yes"
  const a = proof?.anchor;
  if (a && a.blockNumber != null && (a.blockHash || a.txHash)) {
    if (ev.anchorBlockOk == null) return { need: "anchor_block" };
    // Another instance of the chain, or a reorganisation: its registry cannot speak for it.
    if (!ev.anchorBlockOk) return { error: ev.chainKind === "embedded" ? "local_only_elsewhere" : "anchor_not_on_chain" };
  }
  const decision = mode(ev) === "batch" ? decideBatch(ev) : decideSingle(ev);
  // A record changed or not anchored: who signed it is beside the point.
  return decision.status === "VALID" ? decideSignature(ev, decision) : decision;
}

// A signature in the proof must be over this very record; a pinned signer must have made it.
function decideSignature(ev, anchored) {
  const signer = signedBy(ev);
  if (signer) {
    if (ev.recoveredSigner == null) return { need: "signature" };
    if (!same(ev.recoveredSigner, signer)) return { error: "bad_signature" };
  }
  if (ev.signerPin) {
    if (!signer) return verdict("SUBMITTER_MISMATCH", "unsigned", anchored.registration);
    if (!same(signer, ev.signerPin)) return verdict("SUBMITTER_MISMATCH", "signed_by_other", anchored.registration);
  }
  return anchored;
}

function decideBatch(ev) {
  const expected = expectedSubmitter(ev);
  if (ev.merkleOk == null) return { need: "merkle" };
  if (ev.batch == null) return { need: "batch" };
  if (ev.batch.timestamp === 0) {
    if (ev.merkleOk) {
      if (ev.rootAnchorers == null) return { need: "root_anchorers" };
      const others = byOthers(ev.rootAnchorers, expected);
      if (others.length) return verdict("SUBMITTER_MISMATCH", "root_anchored_by_other", others[0]);
    }
    return verdict("NOT_FOUND", "root_not_anchored");
  }
  if (ev.registryMerkleOk != null && ev.registryMerkleOk !== ev.merkleOk) return { error: "evidence_conflict" };
  const anchored = { submitter: expected, timestamp: ev.batch.timestamp };
  return ev.merkleOk ? verdict("VALID", "in_anchored_batch", anchored)
    : verdict("TAMPERED", "not_in_batch", anchored);
}

function decideSingle(ev) {
  const expected = expectedSubmitter(ev);
  const pending = ev.proof != null && ev.proof.status === "pending";
  if (expected) {
    if (ev.entry == null) return { need: "entry" };
    if (ev.entry.hash !== ZERO_HASH) {
      const held = { submitter: expected, timestamp: ev.entry.timestamp, hash: ev.entry.hash };
      return ev.entry.hash === ev.recordHash ? verdict("VALID", "registered_by_submitter", held)
        : verdict("TAMPERED", "hash_differs", held);
    }
    if (ev.hashRegistrants == null) return { need: "hash_registrants" };
    const others = byOthers(ev.hashRegistrants, expected);
    if (others.length) return verdict("SUBMITTER_MISMATCH", "hash_registered_by_other", others[0]);
    if (anchoredProof(ev)) return verdict("NOT_FOUND", "submitter_never_registered");
    if (pending) return verdict("NOT_FOUND", "not_anchored_yet");
    return { error: "proof_needed" };
  }
  if (ev.first == null) return { need: "first" };
  if (ev.first.hash === ZERO_HASH) {
    return pending ? verdict("NOT_FOUND", "not_anchored_yet") : { error: "proof_needed" };
  }
  const first = { submitter: ev.first.submitter, timestamp: ev.first.timestamp, hash: ev.first.hash };
  if (ev.first.hash === ev.recordHash) return verdict("VALID", "registered", first);
  if (ev.hashRegistrants == null) return { need: "hash_registrants" };
  if (ev.hashRegistrants.length) {
    return verdict("VALID", "registered_by_later_submitter", ev.hashRegistrants[0]);
  }
  return verdict("TAMPERED", "hash_differs", first);
}

/** One line per reason (Python: verdict.REASONS). */
export const REASONS = {
  registered: "the hash registered under {mrv_id} (first registrant {submitter}) equals this record's",
  registered_by_submitter: "{submitter} registered {mrv_id} with exactly this record's hash",
  registered_by_later_submitter: "{submitter} registered exactly this hash under {mrv_id}; the first registrant of the ID holds another hash",
  hash_differs: "{submitter} registered {mrv_id} with another hash: the record changed after it was anchored",
  hash_registered_by_other: "this hash is registered under {mrv_id} only by {submitter}, not by the expected {expected}",
  submitter_never_registered: "{expected} never registered {mrv_id} on this registry",
  not_anchored_yet: "the proof says {mrv_id} is still pending; it was never anchored",
  in_anchored_batch: "the record's hash is a leaf of batch root {merkle_root}, anchored by {submitter}",
  not_in_batch: "the Merkle proof does not link this record's hash to root {merkle_root} (the record changed, or the proof belongs to another record)",
  root_not_anchored: "{expected} never anchored batch root {merkle_root} on this registry",
  root_anchored_by_other: "batch root {merkle_root} was anchored only by {submitter}, not by the expected {expected}",
  unsigned: "anchored by {submitter}, but the proof carries no signature: the expected signer {signer_pin} never vouched for this record",
  signed_by_other: "anchored by {submitter} and signed by {signer}, not by the expected signer {signer_pin}",
};

export function reasonText(reason, fields) {
  return REASONS[reason].replace(/\{(\w+)\}/g, (_, k) => String(fields[k] ?? "—"));
}

/** What a verdict proves, and to whom (Python: verdict.trust_of and TRUST_NOTES). */
export function trustOf(chainKind, submitterIsDevKey) {
  if (chainKind === "embedded") return "local only";
  if (chainKind === "public" && !submitterIsDevKey) return "public";
  return "private network";
}

export const TRUST_NOTES = {
  "public": "chain {chain_id} is public: anyone can check this with any node of it",
  "private network": "chain {chain_id} is a private or development network: this is evidence only for those who trust that node",
  "local only": "anchored on this machine's own embedded chain: it shows the record has not changed since it was anchored here, and is no evidence for anyone else",
};
export const DEV_KEY_NOTE = "; the submitter is a well-known development key, which anyone can use";
