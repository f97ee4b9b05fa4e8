"""A researcher's side of a registry service: submit, keep the receipt, fetch the proof.

:func:`submit` sends a stored record's fingerprint (with ``publish``, the record too; with
a signer, an EIP-191 signature over it) and writes what comes back into the record's proof
sidecar: a pending receipt, or the complete proof if the fingerprint was anchored already.
:func:`upgrade` later asks the registry for the complete proof and keeps it only after
checking it: the record's ID and fingerprint, and the Merkle path from the fingerprint to
the root (a registry handing out a wrong proof is refused here; whether the root is on
chain, and who anchored it, is ``mrv verify``'s question, answered by the chain).

Only :mod:`requests` is needed here (no database, no web server): researchers install
nothing more than mrv-ml.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mrv_ml.anchoring.wire import (
    PROOF_STATUSES,
    SUBMISSIONS_PATH,
    error_of,
    proof_path,
    submission_body,
)
from mrv_ml.config import redact_url
from mrv_ml.errors import (
    ConfigError,
    EvidenceConflictError,
    MalformedProofError,
    MRVError,
    RecordError,
    RegistryUnavailableError,
)
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.merkle import verify_proof
from mrv_ml.record.proof import Proof, RegistryReceipt

if TYPE_CHECKING:
    from mrv_ml.anchoring.single import AnchorOutcome
    from mrv_ml.chain.keys import Signer
    from mrv_ml.config import Settings
    from mrv_ml.storage.store import RecordStore

TIMEOUT_S = 10.0  # a registry that does not answer leaves the record pending, never waits
MAX_ANSWER_BYTES = 4 << 20  # a proof is a few kB; a published record at most a few MB
# A registry's rate limit (429) is waited out, as its Retry-After says (each wait capped),
# up to this long in all per request; then the record stays pending with the reason.
MAX_RATE_LIMIT_WAIT_S = 60.0
MAX_RETRY_AFTER_S = 10.0


def _base(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"the registry URL must start with http:// or https://, "
                          f"not {url[:40]!r}")
    return url.rstrip("/")


def _request(method: str, url: str, *, token: str | None, body: Any = None,
             timeout_s: float = TIMEOUT_S) -> tuple[int, Any]:
    """(status, parsed JSON body or None). A rate limit (429) is waited out as its
    Retry-After says, within :data:`MAX_RATE_LIMIT_WAIT_S` in all; then its status is
    returned like any other."""
    waited = 0.0
    while True:
        status, data, retry_after = _request_once(method, url, token=token, body=body,
                                                  timeout_s=timeout_s)
        if status != 429:
            return status, data
        pause = min(max(retry_after, 0.1), MAX_RETRY_AFTER_S)
        if waited + pause > MAX_RATE_LIMIT_WAIT_S:
            return status, data
        time.sleep(pause)
        waited += pause


def _request_once(method: str, url: str, *, token: str | None, body: Any,
                  timeout_s: float) -> tuple[int, Any, float]:
    """(status, parsed JSON body or None, Retry-After seconds). The answer is read up to
    :data:`MAX_ANSWER_BYTES` and parsed as strictly as a record file: a registry is not
    trusted to be well-behaved."""
    import requests

    from mrv_ml.record.strictjson import parse_json_strict

    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with requests.request(method, url, json=body, headers=headers, timeout=timeout_s,
                              allow_redirects=False, stream=True) as response:
            raw = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
            status = response.status_code
            retry_after = response.headers.get("Retry-After", "1")
    except requests.RequestException as e:
        raise RegistryUnavailableError(f"cannot reach the registry at {redact_url(url)}: "
                                       f"{type(e).__name__}") from None
    if len(raw) > MAX_ANSWER_BYTES:
        raise EvidenceConflictError(f"the registry at {redact_url(url)} answered more than "
                                    f"{MAX_ANSWER_BYTES:,} bytes: refused",
                                    key="bad_registry_proof")
    try:
        data = parse_json_strict(raw, "the registry's answer") if raw else None
    except RecordError:
        data = None
    try:
        seconds = float(retry_after)
    except ValueError:
        seconds = 1.0
    return status, data, seconds if seconds == seconds else 1.0  # NaN: one second


def _refusal(status: int, data: Any, url: str) -> MRVError:
    error = error_of(data)
    message = str(error.get("message"))[:300] if isinstance(error, dict) else f"HTTP {status}"
    where = redact_url(url)
    if status in (401, 403):
        return ConfigError(f"the registry at {where} refused: {message} (set "
                           "MRV_REGISTRY_TOKEN)")
    if status in (400, 413, 422):
        return RecordError(f"the registry at {where} refused the submission: {message}")
    if status == 404 and error is None:
        return ConfigError(f"{where} is not an mrv-ml registry (no /v1 API); a JSON-RPC node "
                           "is set with rpc_url / BLOCKCHAIN_RPC_URL, not registry_url")
    return RegistryUnavailableError(f"the registry at {where} answered {status}: {message}")


def registry_urls(settings: Settings, url: str | None = None) -> list[str]:
    """The registries to submit to: ``url`` or the settings' (comma-separated: witnesses,
    each anchoring independently), checked."""
    urls = [u.strip() for u in (url or settings.registry_url or "").split(",") if u.strip()]
    if not urls:
        raise ConfigError("no registry URL: set MRV_REGISTRY_URL (or --registry)")
    return [_base(u) for u in dict.fromkeys(urls)]


def submit(store: RecordStore, mrv_id: str, settings: Settings, *, publish: bool = False,
           signer: Signer | None = None, url: str | None = None) -> Proof:
    """Submit a stored record to each registry (``url`` or the settings') and keep each
    receipt (or complete proof) in its sidecar. A registry that fails while another took
    the record is left out (submit again later); if none took it, the first error."""
    from mrv_ml.chain.signing import sign

    record = store.load(mrv_id)
    fingerprint = compute_hash(record)
    signature = sign(signer, mrv_id, fingerprint) if signer is not None else None
    body = submission_body(fingerprint, mrv_id,
                           signer=signer.address if signer is not None else None,
                           signature=signature, record=record if publish else None)
    token = settings.registry_token.reveal() if settings.registry_token else None
    proof = store.load_proof(mrv_id) or Proof.new(mrv_id, fingerprint)
    errors: list[MRVError] = []
    bases = registry_urls(settings, url)
    for base in bases:
        try:
            status, data = _request("POST", base + SUBMISSIONS_PATH, token=token, body=body)
            if status not in (200, 202):
                raise _refusal(status, data, base)
            proof = _merge(proof, base, fingerprint,
                           _checked_document(data, mrv_id, fingerprint, base))
        except ConfigError:
            raise
        except MRVError as e:
            errors.append(e)
    if len(errors) == len(bases):
        raise errors[0]
    store.save_proof(proof)
    return proof


def upgrade(store: RecordStore, mrv_id: str, settings: Settings) -> Proof:
    """Fetch the complete proofs of a record submitted to registries; the sidecar as it is
    afterwards (still pending while no registry has anchored it)."""
    current = store.load_proof(mrv_id)
    if current is None or not current.registries:
        raise RecordError(f"{mrv_id} was not submitted to a registry (mrv publish)")
    fingerprint = compute_hash(store.load(mrv_id))
    fetched = fetch_complete(current, fingerprint, settings)
    if fetched is None or fetched == current:
        return current
    store.save_proof(fetched)
    return fetched


def fetch_complete(proof: Proof, fingerprint: str, settings: Settings | None = None
                   ) -> Proof | None:
    """``proof`` with the complete anchor of every registry that has one by now (each
    checked by :func:`_checked_document`), not saved; ``None`` while none has."""
    token = settings.registry_token.reveal() if settings and settings.registry_token else None
    for receipt in proof.registries:
        if receipt.anchor is not None:
            continue
        base = _base(receipt.url)
        status, data = _request("GET", base + proof_path(fingerprint, proof.mrv_id),
                                token=token)
        if status != 200:
            raise _refusal(status, data, base)
        proof = _merge(proof, base, fingerprint,
                       _checked_document(data, proof.mrv_id, fingerprint, base))
    return proof if proof.anchor is not None else None


def through_registry(store: RecordStore, settings: Settings, mrv_ids: list[str] | None = None,
                     *, publish: bool = False, signer: Signer | None = None,
                     upgrade_only: bool = False, url: str | None = None
                     ) -> list[AnchorOutcome]:
    """Anchoring by way of a registry: each record (default: every pending one) already
    submitted is upgraded, each other one submitted (unless ``upgrade_only``). One bad
    record or a registry that is down never stops the others: they stay pending with the
    reason. A configuration error (no registry URL, a token refused) is raised once."""
    from mrv_ml.anchoring.single import AnchorOutcome, failure, mark_pending, usable

    if not upgrade_only:
        registry_urls(settings, url)  # a ConfigError before any record
    candidates = mrv_ids if mrv_ids is not None else list(
        dict.fromkeys([*store.pending_ids(), *awaiting_registry(store)]))
    ids, outcomes = usable(store, candidates)
    for mrv_id in ids:
        current = store.load_proof(mrv_id)
        submitted = current is not None and bool(current.registries)
        if upgrade_only and not submitted:
            continue
        # Named again with the record or a signature: submit again, to add them.
        resubmit = mrv_ids is not None and (publish or signer is not None)
        try:
            if submitted and not resubmit:
                proof = upgrade(store, mrv_id, settings)
            else:
                proof = submit(store, mrv_id, settings, publish=publish, signer=signer, url=url)
        except ConfigError:
            raise
        except MRVError as e:
            reason, code = failure(e)
            if not submitted:
                mark_pending(store, mrv_id, f"registry: {reason}")
            outcomes.append(AnchorOutcome(mrv_id, "pending", None, store.load_proof(mrv_id),
                                          reason, code))
            continue
        anchor = proof.anchor
        outcomes.append(AnchorOutcome(mrv_id, "anchored" if anchor else "pending",
                                      anchor.tx_hash if anchor else None, proof,
                                      None if anchor else describe(proof), None))
    return outcomes


def awaiting_registry(store: RecordStore) -> list[str]:
    """Records with a registry whose complete proof has not been fetched yet (pending ones,
    and anchored ones whose witness registries have not answered yet)."""
    out = []
    for summary in store.list():
        if summary.anchor_state not in ("pending", "anchored"):
            continue
        proof = store.load_proof(summary.mrv_id)
        if proof is not None and any(r.anchor is None for r in proof.registries):
            out.append(summary.mrv_id)
    return out


def _checked_document(data: Any, mrv_id: str, fingerprint: str, base: str) -> Proof:
    """The registry's answer as a Proof, refused unless it is this record's and, when
    anchored, its Merkle path leads from the fingerprint to the root it names."""
    where = redact_url(base)
    if not isinstance(data, dict) or data.get("status") not in PROOF_STATUSES:
        raise EvidenceConflictError(f"the registry at {where} answered something that is not "
                                    "a proof document", key="bad_registry_proof")
    try:
        proof = Proof.from_dict(data.get("proof"), f"the proof from {where}")
    except MalformedProofError as e:
        raise EvidenceConflictError(str(e), key="bad_registry_proof") from None
    if proof.mrv_id != mrv_id or proof.record_digest != fingerprint or \
            proof.status != data["status"]:
        raise EvidenceConflictError(f"the registry at {where} answered with the proof of "
                                    "another record", key="bad_registry_proof")
    anchor = proof.anchor
    if anchor is not None:
        merkle = anchor.merkle
        if anchor.mode != "batch" or merkle is None or \
                not verify_proof(merkle.root, "0x" + fingerprint, list(merkle.proof)):
            raise EvidenceConflictError(f"the registry at {where} gave a Merkle proof that does "
                                        "not lead from this record to its root: refused",
                                        key="bad_registry_proof")
    return proof


def _merge(current: Proof, url: str, fingerprint: str, answered: Proof) -> Proof:
    """``current`` with registry ``url``'s answer: its receipt (and anchor, once complete)
    recorded; the first complete anchor becomes the proof's own (earlier ones go to the
    history, as everywhere); the researcher's signature kept."""
    answered_receipt = answered.registries[0] if answered.registries else None
    receipt = RegistryReceipt(url, answered_receipt.received_at if answered_receipt else None,
                              answered.anchor)
    receipts = tuple(receipt if r.url == url else r for r in current.registries)
    if url not in {r.url for r in current.registries}:
        receipts += (receipt,)
    merged = replace(current, registries=receipts, record_digest=fingerprint,
                     signature=answered.signature or current.signature)
    if answered.anchor is not None and current.anchor is None:
        return merged.anchored(answered.anchor, fingerprint)
    if merged.status == "pending" and answered.pending_reason:
        merged = replace(merged, pending_reason=answered.pending_reason)
    return merged


def describe(proof: Proof) -> str:
    """One line for people: where the record stands with its registries."""
    urls = ", ".join(r.url for r in proof.registries if r.anchor is None) or "-"
    if proof.anchor is not None:
        return f"anchored through {urls} (tx {proof.anchor.tx_hash}, block " \
               f"{proof.anchor.block_number})"
    return f"pending at {urls}"

