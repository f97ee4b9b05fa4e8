"""``mrv verify``: one record or many, a verdict each; nothing is written.

Library errors propagate to :func:`mrv_ml.cli.main` (one line, their exit code). Heavy
modules (web3) are imported inside the command so that ``mrv --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mrv_ml.cli._app import app, console
from mrv_ml.cli._core import _print_json, _safe
from mrv_ml.cli._options import (
    ContractOption,
    DataDirOption,
    JsonOption,
    NetworkOption,
    _record_paths,
    _settings,
)
from mrv_ml.cli._timestamp import TsaRootOption
from mrv_ml.units import format_co2_kg

if TYPE_CHECKING:
    from mrv_ml.verification.model import FileVerdict, Verdict

_ICONS = {"VALID": "✅ VALID", "TAMPERED": "❌ TAMPERED", "NOT_FOUND": "⚠️ NOT FOUND",
          "SUBMITTER_MISMATCH": "⚠️ SUBMITTER MISMATCH"}


def _print_verdict(v: Verdict, source: str) -> None:
    from mrv_ml.reporting.verdict_text import verdict_headline, verdict_rows

    console.print(verdict_headline(v), markup=False)
    for label, value in verdict_rows(v, source):
        console.print(f"  {label + ':':<19} {_safe(value)}", markup=False)


def _result_json(r: FileVerdict) -> dict[str, Any]:
    if r.verdict is not None:
        return dict(r.verdict.to_dict(), file=str(r.path))
    assert r.error is not None
    return {"file": str(r.path), "status": "ERROR", "error_key": r.error.key,
            "error": str(r.error), "exit_code": r.error.exit_code}


@app.command("verify")
def verify_command(
    records: Annotated[list[str] | None, typer.Argument(
        metavar="RECORD...", help="Record files, directories of records, or MRV IDs in the "
                                  "store; with --attestation: [RECORD] [SUBJECT FILE...].")]
    = None,
    attestation: Annotated[Path | None, typer.Option(
        "--attestation", metavar="FILE", help="Verify this in-toto attestation (mrv export "
                                              "--format in-toto) instead; --key or --signer "
                                              "pins who signed it.")] = None,
    keys: Annotated[list[Path] | None, typer.Option(
        "--key", metavar="PUBKEY",
        help="With --attestation: a public key you trust (Ed25519 or ECDSA P-256 PEM, e.g. "
             "cosign.pub); the attestation must be signed by one of them. Repeatable.")]
    = None,
    mrv_id: Annotated[str | None, typer.Option(
        "--mrv-id", metavar="ID", help="Compare against the registry entry of this ID.")] = None,
    submitter: Annotated[str | None, typer.Option(
        "--submitter", metavar="ADDR", help="Address expected to have registered the record.")]
    = None,
    signer: Annotated[str | None, typer.Option(
        "--signer", metavar="ADDR", help="Researcher expected to have signed the record's "
                                         "fingerprint (mrv publish --sign).")] = None,
    network: NetworkOption = None,
    rpc_urls: Annotated[list[str] | None, typer.Option(
        "--rpc-url", metavar="URL",
        help="Endpoint of the chain the proof names (same as BLOCKCHAIN_RPC_URL); give it "
             "twice for two independent providers that must agree.")] = None,
    contract: ContractOption = None, data_dir: DataDirOption = None,
    tsa_roots: TsaRootOption = None,
    require: Annotated[str | None, typer.Option(
        "--require", metavar="REQUIREMENT",
        help="What must hold for VALID, e.g. 'any-of(chain:public, tsa:root.pem)': terms "
             "chain:public, chain:ID, chain:any, tsa:ROOT (PEM file or preset), "
             "signer:0x..., key:PUB.pem (attestations), combined with all-of(...) and "
             "any-of(...); @FILE reads it from a file. Unmet: exit 13, naming each term.")]
    = None,
    as_json: JsonOption = False,
) -> None:
    """Check records against the chain their proof names, and the proof's RFC 3161
    timestamps against the roots named (--tsa-root: a trusted timestamp suffices where the
    chain cannot be checked); each record's proof is read from beside it. Nothing is
    written.

    Exit 0 VALID, 1 TAMPERED, 2 NOT FOUND, 5 SUBMITTER MISMATCH (several records: the
    worst), 3 unusable input, 4 chain unreachable, 7 configuration or untrusted evidence,
    9 proof file needed, 11 anchored on its author's local chain only, 12 the endpoints
    or the anchors disagree (or an attestation's signature is not its signer's), 13 the
    --require requirement is not met.
    """
    from mrv_ml.anchoring.timestamp import load_roots
    from mrv_ml.verification.keys import load_public_key
    from mrv_ml.verification.requirement import KeyTerm, parse_requirement, terms
    from mrv_ml.verification.verifier import iter_verify_files

    roots = load_roots(tsa_roots or [])
    requirement = parse_requirement(require) if require is not None else None
    if requirement is not None and attestation is None \
            and any(isinstance(t, KeyTerm) for t in terms(requirement)):
        raise typer.BadParameter("key: checks an attestation's signature: give --attestation "
                                 "FILE (a record's proof is signed with an Ethereum key: "
                                 "signer:0x...)")
    urls = rpc_urls or []
    if len(urls) > 2:
        raise typer.BadParameter("at most two endpoints (--rpc-url twice)")
    settings = _settings(network, urls[0] if urls else None, contract, data_dir)
    if attestation is not None:
        from mrv_ml.cli._attest import verify_attestation_command

        if mrv_id is not None:
            raise typer.BadParameter("--mrv-id: an attestation names its record's ID")
        raise typer.Exit(verify_attestation_command(
            attestation, records or [], signer, submitter, urls[1] if len(urls) == 2 else None,
            settings, as_json, keys=[load_public_key(k) for k in keys or []], tsa_roots=roots,
            requirement=requirement))
    if keys:
        raise typer.BadParameter("--key checks an attestation's signature: give --attestation "
                                 "FILE (a record's proof is signed with an Ethereum key: "
                                 "--signer)")
    if not records:
        raise typer.BadParameter("give RECORD... (or --attestation FILE)")
    paths = _record_paths(records, settings)
    results = iter_verify_files(paths, settings=settings, expected_submitter=submitter,
                                expected_signer=signer, mrv_id=mrv_id,
                                witness_rpc_url=urls[1] if len(urls) == 2 else None,
                                tsa_roots=roots, requirement=requirement)
    if len(paths) == 1 and not paths[0].is_dir():
        (result,) = results
        if as_json:
            _print_json(_result_json(result))
        elif result.error is not None:
            raise result.error
        else:
            assert result.verdict is not None
            _print_verdict(result.verdict, str(result.path))
        worst = result.exit_code
    else:
        worst = _print_many(results, as_json)
    if worst:
        raise typer.Exit(worst)


def _print_many(results: Iterator[FileVerdict], as_json: bool) -> int:
    """One line (or JSON item) per record as it is verified, then the summary: a directory
    of any size is streamed, never held. Returns the worst exit code."""
    from mrv_ml.verification.verifier import worse

    counts: dict[str, int] = {}
    worst = 0
    if as_json:
        sys.stdout.write("[")
    for n, r in enumerate(results):
        worst = worse(worst, r.exit_code)
        v = r.verdict
        key = v.status.value if v is not None else "NOT VERIFIED"
        counts[key] = counts.get(key, 0) + 1
        if as_json:
            sys.stdout.write(("," if n else "") + "\n  " + json.dumps(
                _result_json(r), ensure_ascii=False, allow_nan=False))
            continue
        status = _ICONS[v.status.value] if v is not None else "❌ NOT VERIFIED"
        extra = (f"{format_co2_kg(v.co2_kg)}  {v.trust}  tx {v.tx_hash or '-'}"
                 if v is not None else str(r.error))
        console.print(f"{status:<24} {_safe(r.path.name)}  {_safe(extra)}", markup=False)
    if as_json:
        sys.stdout.write("\n]\n")
        sys.stdout.flush()
    else:
        console.print(f"{sum(counts.values())} record(s): "
                      + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())), markup=False)
    return worst
