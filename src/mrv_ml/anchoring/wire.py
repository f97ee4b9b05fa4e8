"""The registry's HTTP wire: the URL paths and JSON bodies that a researcher's client
(:mod:`mrv_ml.anchoring.registry_client`) and the registry service
(:mod:`mrv_ml.registry_service.app`) both speak, named in one place.

A submission is ``POST`` :data:`SUBMISSIONS_PATH` with :func:`submission_body`; the
answer, and ``GET`` :func:`proof_path` later, is :func:`proof_document`; a refusal is
:func:`error_body` with a 4xx/5xx status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SUBMISSIONS_PATH = "/v1/submissions"
PROOF_PATH = "/v1/proofs/{ref}"  # ref: a fingerprint (64 hex) or an MRV ID

#: The fields of a submission's body; any other is refused.
SUBMISSION_FIELDS = ("fingerprint", "mrv_id", "signer", "signature", "record")
#: The ``status`` of a proof document.
PROOF_STATUSES = ("pending", "anchored")


def proof_path(fingerprint: str, mrv_id: str) -> str:
    """Where the proof of ``fingerprint`` under record ``mrv_id`` is fetched."""
    return f"{PROOF_PATH.format(ref=fingerprint)}?mrv_id={mrv_id}"


def submission_body(fingerprint: str, mrv_id: str, *, signer: str | None = None,
                    signature: str | None = None,
                    record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A submission: the fingerprint and ID, the signer with their signature (they come
    together), and the record itself to publish it."""
    body: dict[str, Any] = {"fingerprint": fingerprint, "mrv_id": mrv_id}
    if signer is not None:
        body.update(signer=signer, signature=signature)
    if record is not None:
        body["record"] = record
    return body


def proof_document(status: str, proof: dict[str, Any]) -> dict[str, Any]:
    """``{"status": "pending"|"anchored", "proof": <sidecar>}``: the registry's answer."""
    return {"status": status, "proof": proof}


def error_body(key: str, message: str) -> dict[str, Any]:
    """A refusal's body: ``{"error": {"key", "message"}}``."""
    return {"error": {"key": key, "message": message}}


def error_of(data: Any) -> Any:
    """The ``error`` object of an answer's parsed body, ``None`` if it has none."""
    return data.get("error") if isinstance(data, dict) else None
