"""Standard signing keys for the tests: ``key_pair(directory, kind)`` writes a fresh
Ed25519 (``"ed25519"``) or ECDSA P-256 (``"ecdsa"``) private key as unencrypted PKCS#8 PEM,
as ``openssl genpkey`` writes it, and returns ``(path, public key)`` (cryptography's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def key_pair(directory: Path, kind: str) -> tuple[Path, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    key: Any = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" \
        else ec.generate_private_key(ec.SECP256R1())
    path = directory / f"{kind}.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path, key.public_key()
