"""Signing keys: a raw key from the environment or an encrypted keystore (scrypt).

Nothing here ever puts key material into a message, a ``repr`` or a file other than
the encrypted keystore.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from mrv_ml.config import Secret, Settings
from mrv_ml.errors import KeyConfigError, MRVValueError
from mrv_ml.networks import Network, is_key_text

KEYSTORE_DIR = "keystore"


class Signer:
    """An account that can sign; ``repr``/``str`` show the address only."""

    __slots__ = ("_account", "dev_key")

    def __init__(self, account: LocalAccount, *, dev_key: bool) -> None:
        self._account = account
        self.dev_key = dev_key  # one of the publicly known development keys

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign_transaction(self, tx: dict[str, Any]) -> Any:
        return self._account.sign_transaction(tx)

    def sign_text(self, text: str) -> str:
        """An EIP-191 (``personal_sign``) signature over ``text``, as 0x + 130 hex."""
        from eth_account.messages import encode_defunct

        signed = self._account.sign_message(encode_defunct(text=text))
        return "0x" + bytes(signed.signature).hex()

    def __repr__(self) -> str:
        return f"Signer({self.address})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("Signer objects cannot be pickled")


def _from_key(secret: Secret) -> Signer:
    from mrv_ml.chain.localchain import is_dev_key

    text = secret.reveal().strip()
    try:
        if not is_key_text(text):
            raise MRVValueError("not 64 hex digits")
        account = Account.from_key(text)
    except Exception:  # never chain the original: its message may echo the key
        raise KeyConfigError("PRIVATE_KEY is not a valid private key "
                             "(expected 32 bytes as 64 hex characters)") from None
    return Signer(account, dev_key=is_dev_key(text))


def keystore_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / KEYSTORE_DIR


def list_keystores(settings: Settings) -> list[tuple[str, Path]]:
    """(address, path) of every keystore file in ``<data_dir>/keystore``."""
    out: list[tuple[str, Path]] = []
    directory = keystore_dir(settings)
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.json")):
        try:
            address = json.loads(path.read_text(encoding="utf-8"))["address"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        out.append(("0x" + str(address).removeprefix("0x"), path))
    return out


def _password(settings: Settings, prompt: str, *, confirm: bool = False) -> str:
    if settings.keystore_password is not None:
        return settings.keystore_password.reveal()
    if not sys.stdin.isatty():
        raise KeyConfigError("keystore password needed: set MRV_KEYSTORE_PASSWORD "
                             "(no terminal to prompt on)")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Repeat password: ") != first:
        raise KeyConfigError("passwords do not match")
    return first


def _find_keystore(settings: Settings) -> Path | None:
    if settings.keystore is not None:
        path = Path(settings.keystore)
        if not path.is_file():
            raise KeyConfigError(f"keystore {path} does not exist")
        return path
    found = list_keystores(settings)
    if len(found) > 1:
        raise KeyConfigError(f"{len(found)} keystores in {keystore_dir(settings)}; "
                             "choose one with MRV_KEYSTORE")
    return found[0][1] if found else None


def decrypt_keystore(path: Path, settings: Settings) -> Signer:
    from mrv_ml.chain.localchain import is_dev_key

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise KeyConfigError(f"cannot read keystore {path}: {e}") from None
    password = _password(settings, f"Password for {path.name}: ")
    try:
        key = Account.decrypt(data, password)
    except ValueError:
        raise KeyConfigError(f"cannot unlock keystore {path}: wrong password "
                             "or damaged file") from None
    except Exception as e:
        raise KeyConfigError(f"keystore {path} is not a valid keystore "
                             f"({type(e).__name__})") from None
    account = Account.from_key(key)
    return Signer(account, dev_key=is_dev_key(bytes(key).hex()))


def load_signer(settings: Settings) -> Signer | None:
    """The configured signer: PRIVATE_KEY first, else a keystore; None when neither."""
    if settings.private_key is not None and settings.private_key.reveal().strip():
        return _from_key(settings.private_key)
    path = _find_keystore(settings)
    return decrypt_keystore(path, settings) if path is not None else None


def refuse_dev_key_on_public(network: Network, signer: Signer) -> None:
    """Well-known development keys are public: anyone could sign as them on a real chain."""
    if signer.dev_key and not network.is_dev:
        raise KeyConfigError(
            f"refusing a well-known development key on {network.name}: it is public "
            "(anvil/Hardhat/eth-tester default) and anyone can use it; configure your own key")


def save_keystore(settings: Settings, secret: Secret | None = None) -> tuple[str, Path]:
    """Encrypt ``secret`` (or a new random key) into ``<data_dir>/keystore``; (address, path)."""
    account = Account.create() if secret is None else _from_key(secret)._account
    password = _password(settings, "New keystore password: ", confirm=True)
    if not password:
        raise KeyConfigError("refusing an empty keystore password")
    data = Account.encrypt(account.key, password, kdf="scrypt")
    directory = keystore_dir(settings)
    path = directory / f"{account.address}.json"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
    except FileExistsError:
        raise KeyConfigError(f"a keystore for {account.address} already exists") from None
    except OSError as e:
        raise KeyConfigError(f"cannot write keystore {path}: {e.strerror}") from None
    return str(account.address), path
