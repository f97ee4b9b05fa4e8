"""Standard signing keys for attestations: Ed25519 and ECDSA P-256/P-384 in PEM, the keys
securesystemslib, in-toto, cosign and Sigstore's verifiers accept (an Ethereum key's
EIP-191 signature, :mod:`mrv_ml.verification.dsse`'s other scheme, none of them takes).

Reading a key is cryptography's; signing and verifying, with the key ID every in-toto tool
computes for that key, are securesystemslib's (``CryptoSigner``, ``SSlibKey``). A private
key is only ever held in memory: never printed, logged or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml.errors import ConfigError, KeyConfigError, MRVError

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner, SSlibKey

__all__ = ["KEY_PASSWORD_ENV", "PublicKey", "SigningKey", "is_encrypted", "load_public_key",
           "load_signing_key"]

#: The password of an encrypted private key file (PKCS#8, as securesystemslib and
#: ``openssl genpkey -aes256`` write them).
KEY_PASSWORD_ENV = "MRV_KEY_PASSWORD"


def _kind(key: Any) -> str | None:
    """The key's type in words, or None for a type standard verifiers do not share."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(key.curve.name)
    return None


def _refused(path: str | Path, key: Any) -> KeyConfigError:
    name = type(key).__name__.removeprefix("_").replace("PrivateKey", "").replace(
        "PublicKey", "")
    return KeyConfigError(f"{path}: a {name} key; attestations are signed with Ed25519 or "
                          "ECDSA P-256/P-384 keys, the types every standard verifier "
                          "accepts (RSA's several schemes are left out: a verifier would "
                          "have to guess which)")


def _read(path: str | Path, what: str) -> bytes:
    from mrv_ml.record.strictjson import read_file_bytes

    try:  # a regular file, bounded: never a device or a FIFO
        return read_file_bytes(path)
    except MRVError as e:
        raise KeyConfigError(f"{what} {e}") from None


def is_encrypted(path: str | Path) -> bool:
    """Whether the PEM private key at ``path`` needs a password to be read."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(_read(path, "--key"), password=None)
    except TypeError:  # cryptography: "Password was not given but private key is encrypted"
        return True
    except ValueError:
        return False  # not a key at all: load_signing_key says so
    return False


@dataclass(frozen=True)
class SigningKey:
    """A private key ready to sign, with the identity verifiers will name it by."""

    signer: CryptoSigner
    kind: str  # "ed25519", "ecdsa-p256", "ecdsa-p384"
    public: Any  # its public key (cryptography)

    @property
    def keyid(self) -> str:
        return str(self.signer.public_key.keyid)

    @property
    def identity(self) -> str:
        return f"{self.kind} key {self.keyid}"

    def public_pem(self) -> str:
        """The public half as PEM (SubjectPublicKeyInfo), as ``openssl pkey -pubout``
        writes it (securesystemslib keeps an Ed25519 key as hex, not PEM)."""
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return str(self.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
                   .decode("ascii"))


def load_signing_key(path: str | Path, password: bytes | None = None) -> SigningKey:
    """The private key in the PEM file at ``path`` (PKCS#8 or the traditional form,
    encrypted with ``password`` or not). KeyConfigError (exit 7) for anything else: no
    such file, not a private key, a wrong or missing password, a type standard verifiers
    do not share."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner

    data = _read(path, "--key")
    if b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----" in data:
        raise KeyConfigError(f"{path}: cosign's own key format (scrypt and NaCl secretbox) is "
                             "not read: make a PEM key with `openssl genpkey -algorithm "
                             "ed25519 -out key.pem` and give it to cosign with `cosign "
                             "import-key-pair --key key.pem`")
    try:
        key = load_pem_private_key(data, password=password)
    except TypeError:
        if password is None:
            raise KeyConfigError(f"{path}: the key is encrypted: set {KEY_PASSWORD_ENV} to its "
                                 "password") from None
        raise KeyConfigError(f"{path}: the key is not encrypted, yet a password was given "
                             f"({KEY_PASSWORD_ENV}): unset it") from None
    except ValueError:
        hint = " (this is a public key: signing needs its private half)" \
            if b"PUBLIC KEY" in data else ""
        raise KeyConfigError(f"{path}: not a PEM private key, or its password is wrong{hint}"
                             ) from None
    except Exception as e:  # cryptography's UnsupportedAlgorithm: a key type it cannot read
        raise KeyConfigError(f"{path}: not a usable private key ({type(e).__name__})"
                             ) from None
    kind = _kind(key)
    if kind is None:
        raise _refused(path, key)
    return SigningKey(CryptoSigner(key), kind, key.public_key())


@dataclass(frozen=True)
class PublicKey:
    """A public key a reviewer trusts (``--key PUB.pem``): it checks the signatures made
    with its private half, and pins who must have signed."""

    key: SSlibKey
    kind: str
    path: str

    @property
    def keyid(self) -> str:
        return str(self.key.keyid)

    @property
    def identity(self) -> str:
        return f"{self.kind} key {self.keyid}"

    def verifies(self, sig: bytes, data: bytes) -> bool:
        """Whether ``sig`` is this key's signature over ``data``."""
        from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
        from securesystemslib.signer import Signature

        try:
            self.key.verify_signature(Signature(self.keyid, sig.hex()), data)
        except (UnverifiedSignatureError, VerificationError):
            return False
        return True


def load_public_key(path: str | Path) -> PublicKey:
    """The public key in the PEM file at ``path`` (SubjectPublicKeyInfo, as ``openssl pkey
    -pubout``, securesystemslib and ``cosign generate-key-pair``'s cosign.pub write it).
    A private key is refused: a reviewer needs only the public half, and should not be
    handed the other."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.signer import SSlibKey

    data = _read(path, "--key")
    if b"PRIVATE KEY" in data:
        raise ConfigError(f"--key {path}: a private key; verifying needs only its public half "
                          "(openssl pkey -in KEY -pubout -out KEY.pub): keep the private "
                          "one to yourself")
    try:
        key = load_pem_public_key(data)
    except ValueError:
        raise ConfigError(f"--key {path}: not a PEM public key") from None
    except Exception as e:  # UnsupportedAlgorithm
        raise ConfigError(f"--key {path}: not a usable public key ({type(e).__name__})"
                          ) from None
    kind = _kind(key)
    if kind is None:
        raise _refused(path, key)
    return PublicKey(SSlibKey.from_crypto(key), kind, str(path))
