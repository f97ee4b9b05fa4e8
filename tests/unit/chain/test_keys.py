"""Signing keys: raw keys, keystores, dev keys on public networks; key text never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mrv_ml.chain.keys import list_keystores, load_signer, refuse_dev_key_on_public, save_keystore
from mrv_ml.chain.localchain import anvil_dev_accounts, dev_accounts
from mrv_ml.config import Secret, Settings, load_settings
from mrv_ml.errors import KeyConfigError
from mrv_ml.networks import get_network
from tests.support.cli import MRV

OWN_KEY = "0x" + "5a" * 32  # not a dev key


def test_invalid_key_message_has_no_key_material() -> None:
    bad = "0x" + "zz" * 32
    with pytest.raises(KeyConfigError) as info:
        load_signer(Settings(private_key=Secret(bad)))
    assert "zz" not in str(info.value) and info.value.__cause__ is None


def test_short_key_refused() -> None:
    with pytest.raises(KeyConfigError, match="64 hex"):
        load_signer(Settings(private_key=Secret("0x1234")))


def test_signer_repr_shows_address_only() -> None:
    signer = load_signer(Settings(private_key=Secret(OWN_KEY)))
    assert signer is not None and not signer.dev_key
    assert "5a5a" not in repr(signer) + str(signer)
    assert signer.address in repr(signer)


def test_dev_keys_refused_on_public_network_only() -> None:
    for account in (dev_accounts()[0], anvil_dev_accounts()[3]):
        signer = load_signer(Settings(private_key=Secret(account.key.hex())))
        assert signer is not None and signer.dev_key
        with pytest.raises(KeyConfigError, match="well-known development key"):
            refuse_dev_key_on_public(get_network("sepolia"), signer)
        refuse_dev_key_on_public(get_network("anvil"), signer)
        refuse_dev_key_on_public(get_network("local"), signer)
    own = load_signer(Settings(private_key=Secret(OWN_KEY)))
    assert own is not None
    refuse_dev_key_on_public(get_network("mainnet"), own)


def test_keystore_roundtrip_and_wrong_password(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, keystore_password=Secret("pw-1"))
    address, path = save_keystore(settings, Secret(OWN_KEY))
    assert OWN_KEY[2:] not in path.read_text()
    assert json.loads(path.read_text())["crypto"]["kdf"] == "scrypt"
    assert list_keystores(settings) == [(address, path)]
    signer = load_signer(settings)
    assert signer is not None and signer.address == address
    with pytest.raises(KeyConfigError, match="wrong password"):
        load_signer(Settings(data_dir=data_dir, keystore_password=Secret("nope")))


def test_keystore_without_password_and_no_terminal(data_dir: Path) -> None:
    save_keystore(Settings(data_dir=data_dir, keystore_password=Secret("pw")))
    with pytest.raises(KeyConfigError, match="MRV_KEYSTORE_PASSWORD"):
        load_signer(Settings(data_dir=data_dir))


def test_missing_keystore_file(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="does not exist"):
        load_signer(Settings(keystore=tmp_path / "nope.json"))


def test_cli_account_import_prints_only_address(data_dir: Path, mrv: MRV,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRV_KEYSTORE_PASSWORD", "pw-2")
    code, out, err = mrv("account", "import", input=OWN_KEY + "\n")
    assert code == 0
    assert OWN_KEY[2:] not in out + err
    address = list_keystores(load_settings())[0][0]
    assert address in out
    assert address in mrv("account", "list").stdout
