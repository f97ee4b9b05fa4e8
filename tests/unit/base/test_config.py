"""Settings precedence: defaults → mrv.toml → environment (.env fills gaps) → flags."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from mrv_ml.config import Secret, Settings, load_settings
from mrv_ml.errors import ConfigError

KEY = "0x" + "ab" * 32


def test_defaults_match_the_seed(tmp_path: Path) -> None:
    settings = load_settings(cwd=tmp_path, environ={}, use_dotenv=False)
    assert settings.data_dir == Path("mrv_data")
    assert settings.network == "local"
    assert settings.private_key is None
    assert settings.pue == 1.0


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    (tmp_path / "mrv.toml").write_text(
        '[mrv]\nnetwork = "sepolia"\nconfirmations = 5\ndata_dir = "from_file"\n', encoding="utf-8")
    env = {"NETWORK": "anvil", "MRV_DATA_DIR": "from_env"}
    settings = load_settings({"data_dir": "from_flag"}, cwd=tmp_path, environ=env,
                             use_dotenv=False)
    assert settings.confirmations == 5          # only the file sets it
    assert settings.network == "anvil"          # env beats file
    assert settings.data_dir == Path("from_flag")  # flag beats env


def test_dotenv_fills_gaps_but_never_overrides_the_real_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"BLOCKCHAIN_RPC_URL=http://127.0.0.1:9999\nNETWORK=anvil\nPRIVATE_KEY={KEY}\n",
        encoding="utf-8")
    settings = load_settings(cwd=tmp_path, environ={"NETWORK": "sepolia"})
    assert settings.rpc_url == "http://127.0.0.1:9999"
    assert settings.network == "sepolia"
    assert settings.private_key is not None and settings.private_key.reveal() == KEY


def test_private_key_never_shows_in_repr_or_str(tmp_path: Path) -> None:
    settings = load_settings(cwd=tmp_path, environ={"PRIVATE_KEY": KEY}, use_dotenv=False)
    for text in (repr(settings), str(settings), repr(settings.private_key),
                 f"{settings.private_key}"):
        assert KEY not in text and KEY[2:] not in text
    with pytest.raises(TypeError):
        pickle.dumps(Secret(KEY))


def test_private_key_in_config_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mrv.toml").write_text(f'private_key = "{KEY}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="must not be stored in a config file") as info:
        load_settings(cwd=tmp_path, environ={}, use_dotenv=False)
    assert KEY not in str(info.value)


@pytest.mark.parametrize(("var", "value", "field"), [
    ("MRV_CONFIRMATIONS", "-1", "confirmations"),
    ("MRV_CONFIRMATIONS", "many", "confirmations"),
    ("MRV_PUE", "0", "pue"),
    ("MRV_PUE", "nan", "pue"),
    ("MRV_PUE", "inf", "pue"),
    ("MRV_PUE", "1e308", "pue"),
    ("MRV_PUE", "0.5", "pue"),
    ("MRV_TX_TIMEOUT", "soon", "tx_timeout_s"),
    ("MRV_TX_TIMEOUT", "nan", "tx_timeout_s"),
])
def test_invalid_values_give_one_line_errors(tmp_path: Path, var: str, value: str,
                                             field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, environ={var: value}, use_dotenv=False)
    message = str(info.value)
    assert field in message and "\n" not in message


def test_unknown_key_and_broken_file_are_reported(tmp_path: Path) -> None:
    (tmp_path / "mrv.toml").write_text("networkk = 'local'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting 'networkk'"):
        load_settings(cwd=tmp_path, environ={}, use_dotenv=False)
    (tmp_path / "mrv.toml").write_text("network = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(cwd=tmp_path, environ={}, use_dotenv=False)


def test_replace_ignores_none_and_coerces() -> None:
    settings = Settings().replace(network=None, data_dir="elsewhere", confirmations="2")
    assert settings.network == "local"
    assert settings.data_dir == Path("elsewhere")
    assert settings.confirmations == 2


@pytest.mark.parametrize(("text", "shown"), [
    ("cannot reach http://127.0.0.1:9: refused", "cannot reach http://127.0.0.1:9: refused"),
    ("cannot reach http://127.0.0.1:9/: refused", "cannot reach http://127.0.0.1:9: refused"),
    ("cannot reach https://n.io/v3/abcdef0123456789abcdef.", "cannot reach https://n.io/***."),
    ("at https://u:pw@n.io/rpc?key=K1 now", "at https://n.io/*** now"),
    # keys of any length, in the path or the query: only scheme, host and port remain
    ("at http://127.0.0.1:9/v3/SECRETKEY4242 now", "at http://127.0.0.1:9/*** now"),
    ("at http://h:8545/SECRET88 now", "at http://h:8545/*** now"),
    ("at http://h:8545/?apikey=SECRET88 now", "at http://h:8545/*** now"),
    ("at http://h:8545#SECRET88 now", "at http://h:8545/*** now"),
    ("at http://[::1]:8545/k/" + "A" * 40 + " now", "at http://[::1]:8545/*** now"),
])
def test_endpoint_credentials_are_taken_out_of_messages(text: str, shown: str) -> None:
    from mrv_ml.config import redact_text

    assert redact_text(text) == shown
