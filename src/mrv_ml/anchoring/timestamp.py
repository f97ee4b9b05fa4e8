"""RFC 3161 timestamps: ask a timestamp authority (TSA) for a signed token over a record's
fingerprint, check its answer, and append it to the proof sidecar.

The request is over the SHA-256 of the record's RFC 8785 bytes (the fingerprint
``mrv verify`` checks, so ``openssl ts -verify -data`` of those bytes agrees), with a nonce
and the TSA's certificate asked for. The answer is checked before anything is written
(rfc3161-client, which sigstore-python uses; no hand-written ASN.1): status granted, the
message imprint and nonce ours, the certificate it was signed with carrying the critical
``timeStamping`` extended key usage; and, when roots are named (``--tsa-root``), the
signature and the certificate chain up to one of them, else, for a preset (``--tsa
sigstore``), up to its built-in root (:func:`preset_roots`). Without a root the signature
cannot be checked (a TSA seldom sends its root): that is verification's, which always needs
the roots the reviewer trusts.

Roots are named (:func:`load_roots`) as PEM files or by a preset's name: the built-in roots
are in ``src/mrv_ml/data/tsa_roots/``, each file saying where it was taken from and its
SHA-256 fingerprint (:data:`mrv_ml.networks.TSA_BUILTIN_ROOTS`).

No authority is contacted unless one is asked for; :data:`mrv_ml.networks.TSA_PRESETS` only
names well-known public ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrv_ml.config import redact_url
from mrv_ml.errors import ConfigError, MRVError, TimestampError
from mrv_ml.networks import TSA_BUILTIN_ROOTS, TSA_PRESETS
from mrv_ml.record.hashing import canonical_bytes, compute_hash
from mrv_ml.record.proof import Proof, Timestamp
from mrv_ml.storage.store import RecordStore

TIMEOUT_S = 20.0
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Stamped:
    mrv_id: str
    timestamp: Timestamp


@dataclass(frozen=True)
class Authority:
    """A timestamp authority to ask, and the roots its answers are checked against (none:
    only the answer's fields are)."""

    url: str
    roots: tuple[Any, ...] = ()


def tsa_url(name_or_url: str) -> str:
    """A preset's URL, or an http(s) URL as given; ConfigError for anything else."""
    url = TSA_PRESETS.get(name_or_url.strip().lower(), name_or_url.strip())
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--tsa {name_or_url[:60]!r}: not an http(s) URL nor one of "
                          f"{', '.join(TSA_PRESETS)}")
    return url


def load_roots(named: Sequence[str | Path]) -> list[Any]:
    """The certificates the reviewer names (``--tsa-root``), each once.

    A ``str`` that is a preset's name (``sigstore``, any case) is that preset's built-in
    root, always: never a file of that name, which a directory someone sent may hold (such a
    file is named with a path, ``./sigstore``). Anything else, and any :class:`Path`, is a
    PEM file (it may hold several certificates). ConfigError for a preset without a built-in
    root, or what is neither a preset nor a PEM file."""
    certificates: list[Any] = []
    for item in named:
        if isinstance(item, str) and item.strip().lower() in TSA_PRESETS:
            certificates += _builtin_root(item.strip().lower())
        else:
            certificates += _pem_file(item)
    return distinct_roots(certificates)


def distinct_roots(certificates: Sequence[Any]) -> list[Any]:
    """``certificates`` each once, in order: rfc3161-client refuses a root given twice."""
    roots: list[Any] = []
    for certificate in certificates:
        if certificate not in roots:  # X.509 certificates compare by their DER bytes
            roots.append(certificate)
    return roots


def authorities(named: Sequence[str], tsa_roots: Sequence[str] | None) -> list[Authority]:
    """The authorities ``named`` (``--tsa``: URLs or presets), each answer to be checked
    against the roots named (``--tsa-root``), which win; else against the preset's built-in
    root; else (a URL, or a preset without one) only its fields."""
    roots = load_roots(tsa_roots) if tsa_roots else None
    return [Authority(tsa_url(n), tuple(preset_roots(n) if roots is None else roots))
            for n in named]


def preset_roots(name_or_url: str) -> list[Any]:
    """The built-in root of the preset ``name_or_url`` names (``--tsa sigstore``); none for
    a URL or a preset without one (freetsa)."""
    name = name_or_url.strip().lower()
    return load_roots([name]) if name in TSA_BUILTIN_ROOTS else []


def _builtin_root(preset: str) -> list[Any]:
    from importlib import resources

    from cryptography import x509

    file = TSA_BUILTIN_ROOTS.get(preset)
    if file is None:
        raise ConfigError(f"--tsa-root {preset}: no built-in root for the {preset} "
                          "preset (its root is in no package mrv-ml takes roots from); get "
                          "its root certificate yourself and name the file (--tsa-root "
                          f"./{preset}-root.pem); built-in: {', '.join(TSA_BUILTIN_ROOTS)}")
    try:
        data = (resources.files("mrv_ml") / "data" / "tsa_roots" / file).read_bytes()
        return x509.load_pem_x509_certificates(data)
    except (OSError, ValueError):
        raise ConfigError(f"--tsa-root {preset}: the built-in root {file} is missing or "
                          "unreadable (a broken installation?)") from None


def _pem_file(path: str | Path) -> list[Any]:
    from cryptography import x509

    from mrv_ml.record.strictjson import read_file_bytes

    try:  # a regular file, bounded: never a device or a FIFO
        data = read_file_bytes(path)
    except MRVError as e:
        raise ConfigError(f"--tsa-root {e} (give a PEM file, or a preset's built-in root: "
                          f"{', '.join(TSA_BUILTIN_ROOTS)})") from None
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(f"--tsa-root {path}: not a PEM certificate") from None


def request_timestamp(record: dict[str, Any], url: str, roots: Sequence[Any] = (), *,
                      timeout_s: float = TIMEOUT_S) -> Timestamp:
    """A checked RFC 3161 timestamp of ``record`` from the authority at ``url``: over the
    SHA-256 of its RFC 8785 bytes, so the token's imprint is the record's fingerprint."""
    return timestamp_data(canonical_bytes(record), url, roots, timeout_s=timeout_s)


def timestamp_data(data: bytes, url: str, roots: Sequence[Any] = (), *,
                   timeout_s: float = TIMEOUT_S) -> Timestamp:
    """A checked RFC 3161 timestamp of the SHA-256 of ``data`` from the authority at
    ``url`` (a record's bytes, or a signature's for a Sigstore bundle)."""
    import requests
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder, decode_timestamp_response

    query = (TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256)
             .nonce(nonce=True)
             .cert_request(cert_request=True).build())
    where = redact_url(url)
    try:  # no redirects: the authority asked is the one that answers
        with requests.post(url, data=query.as_bytes(), timeout=timeout_s, stream=True,
                           allow_redirects=False,
                           headers={"Content-Type": "application/timestamp-query",
                                    "Accept": "application/timestamp-reply"}) as answer:
            body = answer.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
    except requests.RequestException as e:
        raise TimestampError(f"cannot reach the timestamp authority at {where}: "
                             f"{type(e).__name__}") from None
    if answer.status_code != 200:
        raise TimestampError(f"the timestamp authority at {where} answered HTTP "
                             f"{answer.status_code}")
    if len(body) > MAX_ANSWER_BYTES:
        raise TimestampError(f"the timestamp authority at {where} answered more than "
                             f"{MAX_ANSWER_BYTES:,} bytes")
    try:
        response = decode_timestamp_response(body)
    except ValueError:
        raise TimestampError(f"the timestamp authority at {where} answered something that "
                             "is not an RFC 3161 response") from None
    certificates = _certificates(response)
    leaf = signing_certificate(response)
    _check_fields(response, leaf, hashlib.sha256(data).digest(), query.nonce, where)
    if roots:
        check_answer(response, hashlib.sha256(data).digest(), roots, nonce=query.nonce,
                     where=where)
    # the sidecar is shared: the authority's URL as every message shows it (no path, no
    # query: they may carry an account's key); the token names the authority itself
    return Timestamp(tsa_url=redact_url(url), tsr=body,
                     gen_time=stated_time(response),
                     tsa_name=leaf.subject.rfc4514_string() if leaf is not None else "",
                     certificates=tuple(_pem(c) for c in certificates))


def check_answer(response: Any, digest: bytes, roots: Sequence[Any], *,
                 nonce: int | None = None, where: str = "the timestamp authority") -> None:
    """TimestampError unless ``response`` is a granted, well-signed timestamp of ``digest``
    whose signing certificate (critical ``timeStamping`` usage) chains to one of ``roots``."""
    from rfc3161_client import VerificationError, VerifierBuilder

    if not roots:
        raise TimestampError(f"{where}: no certificate to check its answer against")
    builder = VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    if nonce is not None:
        builder = builder.nonce(nonce)
    try:
        builder.build().verify(response, digest)
    except (VerificationError, ValueError) as e:
        raise TimestampError(f"the answer of {where} does not hold: {e}") from None


def timestamp_stored(store: RecordStore, mrv_id: str, urls: Sequence[str | Authority],
                     roots: Sequence[Any] = ()) -> list[Stamped]:
    """Timestamp the stored record ``mrv_id`` at each authority of ``urls`` and append each
    token to its proof sidecar (made pending if it had none). The record is never touched.
    A URL's answer is checked against ``roots``, an :class:`Authority`'s against its own."""
    record = store.load(mrv_id)
    digest = compute_hash(record)
    out = []
    for where in urls:
        url, checked_by = ((where.url, where.roots) if isinstance(where, Authority)
                           else (where, roots))
        stamp = request_timestamp(record, url, checked_by)
        proof = store.load_proof(mrv_id) or Proof.new(mrv_id, digest)
        store.save_proof(proof.with_timestamp(stamp))
        out.append(Stamped(mrv_id, stamp))
    return out


def _check_fields(response: Any, leaf: Any, digest: bytes, nonce: int | None,
                  where: str) -> None:
    """What holds without a trusted root: granted, our imprint and nonce, a signing
    certificate sent with the critical ``timeStamping`` usage. (The signature and chain
    need a root: :func:`check_answer`, here when roots are named, and at verification.)"""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID
    from rfc3161_client import PKIStatus

    def refuse(why: str) -> TimestampError:
        return TimestampError(f"the answer of {where} does not hold: {why}")

    if PKIStatus(response.status) != PKIStatus.GRANTED:
        raise refuse(f"not granted (status {response.status})")
    info = response.tst_info
    if info.message_imprint.message != digest:
        raise refuse("it timestamps other content than this record's fingerprint")
    if nonce is not None and info.nonce != nonce:
        raise refuse("its nonce is not ours (a replayed answer?)")
    if leaf is None:
        raise refuse("it does not carry its signing certificate")
    try:
        usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise refuse("its certificate has no extended key usage") from None
    if not usage.critical or ExtendedKeyUsageOID.TIME_STAMPING not in usage.value:
        raise refuse("its certificate is not for timestamping (critical timeStamping usage)")


def _certificates(response: Any) -> list[Any]:
    from cryptography import x509

    return [x509.load_der_x509_certificate(der) for der in response.signed_data.certificates]


def signing_certificate(response: Any) -> Any:
    """The certificate the token was signed with, as its one SignerInfo names it (issuer
    and serial, which the signature covers); ``None`` when it is not sent, or several sign."""
    infos = list(response.signed_data.signer_infos)
    if len(infos) != 1:
        return None
    return next((c for c in _certificates(response) if c.issuer == infos[0].issuer
                 and c.serial_number == infos[0].serial_number), None)


def stated_time(response: Any) -> str:
    """The time the token states, RFC 3339 in UTC."""
    return str(response.tst_info.gen_time.isoformat().replace("+00:00", "Z"))


def _pem(certificate: Any) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return str(certificate.public_bytes(Encoding.PEM).decode())
