"""The built-in roots of the timestamp presets (``--tsa-root sigstore``): each file says
where it came from and its fingerprint, and the file holds exactly that certificate; a
preset's name always means its built-in root, never a file of that name someone sent."""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mrv_ml.anchoring.timestamp import load_roots, preset_roots
from mrv_ml.errors import ConfigError
from mrv_ml.networks import TSA_BUILTIN_ROOTS, TSA_PRESETS
from mrv_ml.verification.timestamp import root_fingerprint
from tests.support.tsa import LocalTSA


def _fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


@pytest.mark.parametrize("preset", sorted(TSA_BUILTIN_ROOTS))
def test_each_built_in_root_is_the_certificate_its_header_names(preset: str) -> None:
    assert preset in TSA_PRESETS
    text = (resources.files("mrv_ml") / "data" / "tsa_roots"
            / TSA_BUILTIN_ROOTS[preset]).read_text()
    stated = re.search(r"SHA-256 fingerprint \(DER\): ([0-9A-F:]+)", text)
    assert stated is not None and "Source:" in text
    [root] = load_roots([preset])
    assert _fingerprint(root) == stated.group(1).replace(":", "").lower()
    assert root.subject == root.issuer  # a root: self-issued
    assert root_fingerprint(root) == _fingerprint(root)
    assert preset_roots(preset.upper()) == [root]  # any case


def test_a_preset_name_is_never_a_file_in_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalTSA(tmp_path / "tsa") as tsa:
        # a directory someone sent, holding "sigstore": their root, under a preset's name
        (tmp_path / "sigstore").write_bytes(tsa.root_pem.read_bytes())
        monkeypatch.chdir(tmp_path)
        [builtin] = load_roots(["sigstore"])
        assert "sigstore" in builtin.subject.rfc4514_string()
        [theirs] = load_roots(["./sigstore"])  # a path: the file
        [also_theirs] = load_roots([Path("sigstore")])
        assert _fingerprint(theirs) == _fingerprint(also_theirs) != _fingerprint(builtin)


def test_a_root_named_twice_is_kept_once(tmp_path: Path) -> None:
    with LocalTSA(tmp_path / "tsa") as tsa:
        assert len(load_roots([tsa.root_pem, str(tsa.root_pem), "sigstore", "SIGSTORE"])) == 2


def test_a_preset_without_a_built_in_root_or_a_missing_file_is_a_clear_error(
        tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no built-in root for the freetsa preset"):
        load_roots(["freetsa"])
    assert preset_roots("freetsa") == [] and preset_roots("https://tsa.example/tsr") == []
    with pytest.raises(ConfigError, match="no such file .*built-in root: sigstore, digicert"):
        load_roots([str(tmp_path / "missing.pem")])
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        load_roots([tmp_path / "junk.pem"])


def test_a_local_token_is_untrusted_under_a_built_in_root(tmp_path: Path) -> None:
    """A token from an authority outside the roots named is never VALID: here the reviewer
    names Sigstore's root and the token is our test authority's."""
    from mrv_ml.anchoring.timestamp import request_timestamp
    from mrv_ml.record.hashing import compute_hash
    from mrv_ml.verification.timestamp import StampStatus, check_timestamp
    from tests.support.records import make_sample_record

    record = make_sample_record()
    with LocalTSA(tmp_path / "tsa") as tsa:
        stamp = request_timestamp(record, tsa.url)
    check = check_timestamp(stamp, compute_hash(record), load_roots(["sigstore", "digicert"]))
    assert check.status is StampStatus.UNTRUSTED and "mrv test TSA" in check.detail
