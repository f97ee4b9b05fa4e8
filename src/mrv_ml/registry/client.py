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

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mrv_ml.config import redact_url
from mrv_ml.errors import (
    ConfigError,
    EvidenceConflictError,
    MalformedProofError,
    MRVError,
    RecordError,
    RegistryUnavailableError,
)
from mrv_ml.hashing import compute_hash
from mrv_ml.merkle import verify_proof
from mrv_ml.proof import Proof

if TYPE_CHECKING:
    from mrv_ml.anchor import AnchorOutcome
    from mrv_ml.config import Settings
    from mrv_ml.keys import Signer
    from mrv_ml.store import RecordStore

TIMEOUT_S = 10.0  # a registry that does not answer leaves the record pending, never waits


def _base(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"the registry URL must start with http:// or https://, "
                          f"not {url[:40]!r}")
    return url.rstrip("/")


def _request(method: str, url: str, *, token: str | None, body: Any = None,
             timeout_s: float = TIMEOUT_S) -> tuple[int, Any]:
    import requests

    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = requests.request(method, url, json=body, headers=headers, timeout=timeout_s,
                                    allow_redirects=False)
    except requests.RequestException as e:
        raise RegistryUnavailableError(f"cannot reach the registry at {redact_url(url)}: "
                                       f"{type(e).__name__}") from None
    try:
        data = response.json() if response.content else None
    except ValueError:
        data = None
    return response.status_code, data


def _refusal(status: int, data: Any, url: str) -> MRVError:
    error = data.get("error") if isinstance(data, dict) else None
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


def submit(store: RecordStore, mrv_id: str, settings: Settings, *, publish: bool = False,
           signer: Signer | None = None, url: str | None = None) -> Proof:
    """Submit a stored record to the registry (``url`` or the settings') and keep the
    receipt (or the complete proof) in its sidecar. Raises on failure; the caller decides
    whether the record stays pending with the reason."""
    from mrv_ml.signing import sign

    base = _base(url or settings.registry_url or "")
    record = store.load(mrv_id)
    fingerprint = compute_hash(record)
    body: dict[str, Any] = {"fingerprint": fingerprint, "mrv_id": mrv_id}
    if signer is not None:
        body.update(signer=signer.address, signature=sign(signer, mrv_id, fingerprint))
    if publish:
        body["record"] = record
    token = settings.registry_token.reveal() if settings.registry_token else None
    status, data = _request("POST", f"{base}/v1/submissions", token=token, body=body)
    if status not in (200, 202):
        raise _refusal(status, data, base)
    answered = _checked_document(data, mrv_id, fingerprint, base)
    return _save(store, mrv_id, fingerprint, answered)


def upgrade(store: RecordStore, mrv_id: str, settings: Settings) -> Proof:
    """Fetch the complete proof of a record submitted to a registry; the sidecar as it is
    afterwards (still pending if the registry has not anchored it yet)."""
    current = store.load_proof(mrv_id)
    if current is None or not current.registries:
        raise RecordError(f"{mrv_id} was not submitted to a registry (mrv publish)")
    if current.status == "anchored":
        return current
    fingerprint = compute_hash(store.load(mrv_id))
    complete = fetch_complete(current, fingerprint, settings)
    return _save(store, mrv_id, fingerprint, complete) if complete is not None else current


def fetch_complete(proof: Proof, fingerprint: str, settings: Settings | None = None
                   ) -> Proof | None:
    """The complete proof from the first registry the pending ``proof`` names that has one,
    checked (:func:`_checked_document`), not saved; ``None`` while none has it yet."""
    token = settings.registry_token.reveal() if settings and settings.registry_token else None
    for receipt in proof.registries:
        base = _base(receipt.url)
        status, data = _request("GET", f"{base}/v1/proofs/{fingerprint}?mrv_id={proof.mrv_id}",
                                token=token)
        if status != 200:
            raise _refusal(status, data, base)
        answered = _checked_document(data, proof.mrv_id, fingerprint, base)
        if answered.status == "anchored":
            return answered
    return None


def through_registry(store: RecordStore, settings: Settings, mrv_ids: list[str] | None = None,
                     *, publish: bool = False, signer: Signer | None = None,
                     upgrade_only: bool = False, url: str | None = None
                     ) -> list[AnchorOutcome]:
    """Anchoring by way of a registry: each record (default: every pending one) already
    submitted is upgraded, each other one submitted (unless ``upgrade_only``). One bad
    record or a registry that is down never stops the others: they stay pending with the
    reason. A configuration error (no registry URL, a token refused) is raised once."""
    from mrv_ml.anchor import AnchorOutcome, failure, mark_pending, usable

    if not upgrade_only:
        _base(url or settings.registry_url or "")  # a ConfigError before any record
    ids, outcomes = usable(store, mrv_ids if mrv_ids is not None else store.pending_ids())
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


def submitted_pending(store: RecordStore) -> list[str]:
    """Records submitted to a registry whose complete proof has not been fetched yet."""
    out = []
    for summary in store.list():
        if summary.anchor_state != "pending":
            continue
        proof = store.load_proof(summary.mrv_id)
        if proof is not None and proof.registries:
            out.append(summary.mrv_id)
    return out


def _checked_document(data: Any, mrv_id: str, fingerprint: str, base: str) -> Proof:
    """The registry's answer as a Proof, refused unless it is this record's and, when
    anchored, its Merkle path leads from the fingerprint to the root it names."""
    where = redact_url(base)
    if not isinstance(data, dict) or data.get("status") not in ("pending", "anchored"):
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


def _save(store: RecordStore, mrv_id: str, fingerprint: str, answered: Proof) -> Proof:
    """Merge the registry's answer into the sidecar: receipts and signature kept, an
    anchor added (earlier anchors go to the history, as everywhere)."""
    current = store.load_proof(mrv_id) or Proof.new(mrv_id, fingerprint)
    receipts = current.registries + tuple(r for r in answered.registries
                                          if r.url not in {c.url for c in current.registries})
    merged = replace(current, registries=receipts,
                     signature=answered.signature or current.signature)
    if answered.anchor is not None:
        merged = merged.anchored(answered.anchor, fingerprint)
    elif merged.status == "pending":
        merged = replace(merged, pending_reason=answered.pending_reason, record_digest=fingerprint)
    store.save_proof(merged)
    return merged


def describe(proof: Proof) -> str:
    """One line for people: where the record stands with its registries."""
    urls = ", ".join(r.url for r in proof.registries) or "-"
    if proof.anchor is not None:
        return f"anchored through {urls} (tx {proof.anchor.tx_hash}, block " \
               f"{proof.anchor.block_number})"
    return f"pending at {urls}"

