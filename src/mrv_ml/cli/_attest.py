"""Printing for ``mrv verify --attestation`` and ``mrv export --format in-toto``: the
library (:mod:`mrv_ml.verification.attestation`) decides and writes; this only parses and prints."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml.cli._app import console
from mrv_ml.cli._core import _print_json, _safe

if TYPE_CHECKING:
    from mrv_ml.config import Settings
    from mrv_ml.verification.attestation import AttestationVerdict, Exported
    from mrv_ml.verification.keys import PublicKey
    from mrv_ml.verification.requirement import Requirement

_HEADLINES = {"VALID": "✅ ATTESTATION VALID", "TAMPERED": "❌ ATTESTATION TAMPERED",
              "NOT_FOUND": "⚠️ ATTESTED RECORD NOT FOUND",
              "SUBMITTER_MISMATCH": "⚠️ ATTESTATION SIGNER OR SUBMITTER MISMATCH"}


def _row(label: str, value: str) -> None:
    console.print(f"  {label + ':':<19} {_safe(value)}", markup=False)


def print_attestation_verdict(v: AttestationVerdict, source: str) -> None:
    from mrv_ml.reporting.verdict_text import verdict_rows

    console.print(_HEADLINES[v.status.value], markup=False)
    _row("Attestation", source)
    _row("Detail", v.detail)
    _row("Signed by", ", ".join(v.signers))
    if v.unchecked:
        _row("Not checked", ", ".join(f"keyid {k or '(empty)'}" for k in v.unchecked))
    if v.expected_signer:
        _row("Expected signer", v.expected_signer)
    for s in v.subjects:
        _row("Subject", f"{s.name}: {s.status}" + (f" ({s.file})" if s.file else ""))
    if v.record is not None:
        console.print("The record's anchoring:", markup=False)
        for label, value in verdict_rows(v.record, v.record_file or v.mrv_id):
            _row(label, value)


def verify_attestation_command(attestation: Path, inputs: Sequence[str], signer: str | None,
                               submitter: str | None, witness_rpc_url: str | None,
                               settings: Settings, as_json: bool, *,
                               keys: Sequence[PublicKey] = (),
                               tsa_roots: Sequence[Any] = (),
                               requirement: Requirement | None = None) -> int:
    """``mrv verify --attestation``: the verdict printed; returns its exit code."""
    from mrv_ml.verification.attestation import verify_attestation

    v = verify_attestation(attestation, inputs, expected_signer=signer, keys=keys,
                           expected_submitter=submitter, witness_rpc_url=witness_rpc_url,
                           settings=settings, tsa_roots=tsa_roots, requirement=requirement)
    if as_json:
        _print_json(dict(v.to_dict(), file=str(attestation)))
    else:
        print_attestation_verdict(v, str(attestation))
    return v.exit_code


def print_exported(e: Exported) -> None:
    console.print(f"Wrote {_safe(str(e.path))}: in-toto attestation of {e.mrv_id}, signed by "
                  f"{e.signer}", markup=False)
    for name, digest in e.subjects:
        _row("Subject", f"{name} sha256:{digest}")
    pin = "--key PUB.pem (the key's public half)" if e.standard_key else f"--signer {e.signer}"
    console.print(f"Check it: mrv verify --attestation {_safe(str(e.path))} {pin}",
                  markup=False)
