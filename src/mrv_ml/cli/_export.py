"""``mrv export``: a record where readers already look. ``--format hf-model-card`` is
:mod:`mrv_ml.reporting.modelcard`; ``--format in-toto`` is
:mod:`mrv_ml.verification.attestation`; ``--format sigstore-bundle`` is
:mod:`mrv_ml.verification.sigstore_bundle`."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mrv_ml.cli._app import app, console_err
from mrv_ml.cli._standards import FORMATS, StandardOptions, check_options, export_standard
from mrv_ml.cli._timestamp import TsaRootOption

if TYPE_CHECKING:
    from mrv_ml.config import Settings
    from mrv_ml.verification.keys import SigningKey
    from mrv_ml.verification.sigstore_bundle import ExportedBundle


class ExportFormat(str, enum.Enum):
    hf_model_card = "hf-model-card"
    in_toto = "in-toto"
    sigstore_bundle = "sigstore-bundle"
    boamps = "boamps"
    cyclonedx = "cyclonedx"
    spdx_ai = "spdx-ai"
    sci = "sci"
    ai_act = "ai-act"


class TrainingType(str, enum.Enum):
    pre_training = "pre-training"
    fine_tuning = "fine-tuning"


@app.command("export")
def export_command(
    refs: Annotated[list[str], typer.Argument(
        metavar="RECORD",
        help="A record file, or an MRV ID (or unique prefix) in the store; cyclonedx, "
             "spdx-ai, sci and ai-act take several records of one model (a fine-tune and "
             "its parent, a sweep).")],
    fmt: Annotated[ExportFormat, typer.Option(
        "--format", "-f", case_sensitive=False,
        metavar="hf-model-card|in-toto|sigstore-bundle|boamps|cyclonedx|spdx-ai|sci|ai-act",
        help="hf-model-card: the YAML metadata of a Hugging Face model card "
             "(co2_eq_emissions and an mrv block); in-toto: a signed in-toto "
             "attestation; sigstore-bundle: a Sigstore bundle signed with --key (cosign "
             "verify-blob[-attestation] reads it), nothing uploaded; boamps: Boavizta's "
             "AI energy report; cyclonedx: a CycloneDX 1.6 ML-BOM; spdx-ai: an SPDX 3.0 AI "
             "package; sci: the Software Carbon Intensity (ISO/IEC 21031); ai-act: the EU "
             "AI Act's Annex XI energy section (Markdown with JSON). Each names the MRV ID "
             "and the fingerprint mrv verify checks.")],
    model_card: Annotated[Path | None, typer.Option(
        "--model-card", metavar="FILE",
        help="hf-model-card: the card (README.md) to update, in place unless -o; the rest "
             "of it is left as it is. Without it, a new minimal card.")] = None,
    key: Annotated[Path | None, typer.Option(
        "--key", metavar="KEY",
        help="in-toto, sigstore-bundle: sign with this Ed25519 or ECDSA P-256 private key "
             "(PEM, PKCS#8; password, if any, in MRV_KEY_PASSWORD), which securesystemslib, "
             "in-toto and cosign verify. in-toto without it: an EIP-191 signature by the "
             "Ethereum key (PRIVATE_KEY or the keystore).")] = None,
    content: Annotated[str, typer.Option(
        "--content", metavar="dsse|message",
        help="sigstore-bundle: dsse, the in-toto attestation in a DSSE envelope (default); "
             "message, a signature over the record file's bytes.")] = "dsse",
    tsa: Annotated[list[str] | None, typer.Option(
        "--tsa", metavar="URL|NAME",
        help="sigstore-bundle: an RFC 3161 authority (URL, or a preset: sigstore, digicert, "
             "freetsa) to timestamp the signature at, into the bundle; repeatable.")] = None,
    tsa_roots: TsaRootOption = None,
    task_family: Annotated[str | None, typer.Option(
        "--task-family", metavar="TEXT",
        help="boamps: the task family (imageClassification, textGeneration...); else the "
             "record's tag task_family, else unspecified.")] = None,
    infra_type: Annotated[str | None, typer.Option(
        "--infra-type", metavar="TYPE",
        help="boamps: publicCloud, privateCloud, onPremise or other (default).")] = None,
    functional_unit: Annotated[str | None, typer.Option(
        "--functional-unit", metavar="LABEL=N",
        help="sci: the functional unit R, N of LABEL in the run (\"1M training tokens=42\", "
             "\"sample=50000\", \"FLOP=3e18\"), or epoch (the records' epochs).")] = None,
    embodied_kg: Annotated[float | None, typer.Option(
        "--embodied-kg", metavar="KG",
        help="sci: the hardware's total embodied emissions, kg CO2e (M = KG x run time / "
             "lifetime x share); 0 leaves M out and says so. There is no default.")] = None,
    lifetime_years: Annotated[float | None, typer.Option(
        "--lifetime-years", metavar="YEARS",
        help="sci: the hardware's expected lifespan, over which --embodied-kg is "
             "spread.")] = None,
    hardware_share: Annotated[float | None, typer.Option(
        "--hardware-share", metavar="SHARE",
        help="sci: the part of the hardware reserved for the run, in (0, 1] (default "
             "1).")] = None,
    training_flops: Annotated[float | None, typer.Option(
        "--training-flops", metavar="FLOP",
        help="ai-act: the training compute as you state it.")] = None,
    parameters: Annotated[float | None, typer.Option(
        "--parameters", metavar="N",
        help="ai-act: the model's parameters, with --tokens for the estimate C = 6 N D, "
             "labelled as an estimate.")] = None,
    tokens: Annotated[float | None, typer.Option(
        "--tokens", metavar="N", help="ai-act: the training tokens (see --parameters).")]
    = None,
    subjects: Annotated[list[Path] | None, typer.Option(
        "--subject", metavar="FILE",
        help="in-toto, sigstore-bundle dsse: an artifact the attestation covers (model weights, ...), by its "
             "SHA-256; repeat for more. The record is always a subject.")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE",
        help="Write here (atomically) instead of standard output, or instead of the "
             "--model-card file.")] = None,
    push: Annotated[str | None, typer.Option(
        "--push", metavar="REPO_ID",
        help="hf-model-card: upload the card as README.md of this Hub model repository "
             "(token: HF_TOKEN or `hf auth login`; endpoint: HF_ENDPOINT).")] = None,
    run_verify: Annotated[bool, typer.Option(
        "--verify", help="Verify against the chain first: only a VALID result makes the "
                         "card say 'verified'; any other verdict writes nothing and exits "
                         "with its code.")] = False,
    replace: Annotated[bool, typer.Option(
        "--replace", help="hf-model-card: overwrite a co2_eq_emissions or mrv key of "
                          "another shape (a bare number, a list).")] = False,
    allow_unanchored: Annotated[bool, typer.Option(
        "--allow-unanchored",
        help="hf-model-card: export a record nobody else can check (not anchored, or only "
             "on this machine's embedded chain); the card says so.")] = False,
    training_type: Annotated[TrainingType | None, typer.Option(
        "--training-type", case_sensitive=False, metavar="pre-training|fine-tuning",
        help="hf-model-card: Hugging Face's training_type (a record cannot know it).")] = None,
    dashboard_url: Annotated[str | None, typer.Option(
        "--dashboard-url", envvar="MRV_DASHBOARD_URL", metavar="URL",
        help="Public dashboard for the card's verification link (a loopback URL gives "
             "none).")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", metavar="DIR",
        help="Record store directory (default: MRV_DATA_DIR, the config file, or "
             "./mrv_data).")] = None,
) -> None:
    """Export a record: Hugging Face model-card metadata, an in-toto attestation, a
    Sigstore bundle, or the reporting standards (BoAmps, CycloneDX, SPDX AI, SCI, the AI
    Act's energy section), to standard output unless -o.

    Exit 2 for an unknown record, 3 for a record or card that cannot be used (nothing is
    written), 9 for a record that is not anchored and 11 for one anchored only on this
    machine (unless --allow-unanchored), 4 when the Hub or a timestamp authority cannot be
    reached (or the authority's answer does not hold), 7 when in-toto has no usable signing
    key (--key, PRIVATE_KEY or a keystore; sigstore-bundle and boamps: --key).
    """
    from mrv_ml.config import load_settings

    settings = load_settings({"data_dir": str(data_dir)} if data_dir is not None else None)
    standard = StandardOptions(task_family, infra_type, functional_unit, embodied_kg,
                               lifetime_years, hardware_share, training_flops, parameters,
                               tokens)
    check_options(fmt.value if fmt.value in FORMATS else None, standard)
    if fmt.value in FORMATS:
        if model_card or push or run_verify or replace or allow_unanchored or training_type \
                or subjects or tsa or tsa_roots or content != "dsse":
            raise typer.BadParameter(f"--format {fmt.value} takes the records, -o, --key "
                                     "(boamps) and its own options only")
        if key is not None and fmt is not ExportFormat.boamps:
            raise typer.BadParameter("--key signs in-toto, sigstore-bundle and boamps exports")
        export_standard(fmt.value, refs, settings, output, standard,
                        _signing_key(key) if key is not None else None)
        return
    if len(refs) != 1:
        raise typer.BadParameter(f"--format {fmt.value} exports one record")
    ref = refs[0]
    if fmt is not ExportFormat.sigstore_bundle and (tsa or tsa_roots or content != "dsse"):
        raise typer.BadParameter("--content, --tsa and --tsa-root are for --format "
                                 "sigstore-bundle (a record's own timestamps: mrv timestamp)")
    if fmt is not ExportFormat.hf_model_card and (model_card or push or run_verify or replace
                                                  or allow_unanchored or training_type):
        raise typer.BadParameter("--model-card, --push, --verify, --replace, "
                                 "--allow-unanchored and --training-type are for "
                                 "--format hf-model-card")
    if fmt is ExportFormat.in_toto:
        from mrv_ml.cli._attest import print_exported
        from mrv_ml.verification.attestation import export_attestation

        signing_key = _signing_key(key) if key is not None else None
        print_exported(export_attestation(ref, subjects or [], settings, output,
                                          key=signing_key))
        return
    if fmt is ExportFormat.sigstore_bundle:
        _print_bundle(_export_bundle(ref, subjects or [], settings, output, key, content,
                                     tsa or [], tsa_roots))
        return
    if subjects or key:
        raise typer.BadParameter("--subject and --key are for --format in-toto and "
                                 "sigstore-bundle")
    from mrv_ml.reporting import modelcard

    result = modelcard.export(ref, settings=settings, card=model_card, verify=run_verify,
                              replace=replace, allow_unanchored=allow_unanchored,
                              training_type=training_type.value if training_type else None,
                              dashboard_url=dashboard_url)
    target = output or model_card
    if target is not None:
        modelcard.write_card(target, result.text)
        console_err.print(f"wrote {target} ({result.metadata.mrv['mrv_id']}: "
                          f"{result.metadata.status})", highlight=False)
    elif push is None:
        sys.stdout.write(result.text)
        sys.stdout.flush()
    if push is not None:
        url = modelcard.push(result.text, push)
        console_err.print(f"pushed the card to {push}: {url}", highlight=False)


def _signing_key(path: Path) -> SigningKey:
    """The --key file; its password from MRV_KEY_PASSWORD, else asked on a terminal."""
    import os

    from mrv_ml.verification.keys import KEY_PASSWORD_ENV, is_encrypted, load_signing_key

    password = os.environ.get(KEY_PASSWORD_ENV)
    if password is None and sys.stdin.isatty() and is_encrypted(path):
        password = typer.prompt(f"Password of {path}", hide_input=True)
    return load_signing_key(path, password.encode() if password is not None else None)


def _export_bundle(ref: str, subjects: list[Path], settings: Settings, output: Path | None,
                   key: Path | None, content: str, tsa: list[str],
                   tsa_roots: list[str] | None) -> ExportedBundle:
    from mrv_ml.anchoring.timestamp import authorities
    from mrv_ml.errors import KeyConfigError
    from mrv_ml.verification.sigstore_bundle import BundleContent, export_bundle

    if content not in {c.value for c in BundleContent}:
        raise typer.BadParameter(f"--content {content!r}: dsse or message")
    if content == BundleContent.message.value and subjects:
        raise typer.BadParameter("--subject needs --content dsse (a message signature "
                                 "covers the record file only)")
    if key is None:
        raise KeyConfigError("a Sigstore bundle is signed with a standard key: give --key "
                             "KEY.pem (Ed25519 or ECDSA P-256: openssl genpkey -algorithm "
                             "ed25519 -out key.pem)")
    return export_bundle(ref, subjects, settings, output, key=_signing_key(key),
                         content=BundleContent(content), authorities=authorities(tsa, tsa_roots))


def _print_bundle(e: ExportedBundle) -> None:
    from mrv_ml.cli._app import console
    from mrv_ml.cli._core import _safe
    from mrv_ml.verification.intoto import PREDICATE_TYPE

    what = ("in-toto attestation (DSSE)" if e.content.value == "dsse"
            else "signature of the record file")
    console.print(_safe(f"Wrote {e.path}: Sigstore bundle, {what} of {e.mrv_id}, signed by "
                        f"{e.signer}"), markup=False)
    for name, digest in e.subjects:
        console.print(_safe(f"  {'Subject:':<19} {name} sha256:{digest}"), markup=False)
    for t in e.timestamps:
        console.print(_safe(f"  {'Signature stamped:':<19} {t.gen_time} by {t.tsa_name}"),
                      markup=False)
    record = e.subjects[-1][0]
    check = ("cosign verify-blob-attestation --key PUB.pem --bundle "
             f"{e.path} --type {PREDICATE_TYPE} {record}" if e.content.value == "dsse"
             else f"cosign verify-blob --key PUB.pem --bundle {e.path} {record}")
    console.print(_safe(f"Check it: {check}"), markup=False)
