"""Settings, resolved lowest to highest precedence:

defaults → config file (``mrv.toml``) → environment (the seed's variables, a ``.env``
file filling only what the real environment leaves unset) → explicit overrides
(command-line flags or constructor arguments).

Secrets are held in :class:`Secret`, whose ``repr`` and ``str`` never show the value.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mrv_ml.errors import ConfigError, MRVValueError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_FILE_NAME = "mrv.toml"
DEFAULT_DATA_DIR = "mrv_data"


def redact_url(url: str) -> str:
    """An endpoint URL safe to print, log, serve or write into a sidecar: its scheme, host
    and port only. The path and query are never shown, whatever their length: providers'
    keys come in every shape (``/v3/<key>``, ``/<key>``, ``?apikey=``), so no rule can tell
    a key from a route; ``/***`` says something was there. The full URL stays in memory
    where the connection needs it. The one place endpoint credentials are taken out."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<endpoint>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    hidden = parts.path not in ("", "/") or parts.query or parts.fragment
    return urlunsplit((parts.scheme, netloc, "/***" if hidden else "", "", ""))


_URL_IN_TEXT = re.compile(r"https?://[^\s'\")]+")


def redact_text(text: str) -> str:
    """``text`` with every http(s) URL in it redacted (see :func:`redact_url`): for
    messages that may quote an endpoint (errors, pending reasons in sidecars, logs)."""
    def redact(match: re.Match[str]) -> str:
        url = match.group()
        tail = url[len(url.rstrip(".,;:")):]  # "cannot reach http://h:9: refused"
        return redact_url(url[:len(url) - len(tail)]) + tail

    return _URL_IN_TEXT.sub(redact, text)


_KEYLIKE_SEGMENT = re.compile(r"[A-Za-z0-9_\-]{16,}")


def may_hold_credentials(url: str) -> bool:
    """Whether a URL that is about to be *published* (a bundle's files) might carry a
    credential: a user:password, a query, or a path segment long enough to be a key. A
    second line of defence for text that is public by design (explorer links, a registry's
    address); what mrv-ml itself writes or prints goes through :func:`redact_url`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return True
    return bool(parts.username or parts.password or parts.query or any(
        _KEYLIKE_SEGMENT.fullmatch(segment) for segment in parts.path.split("/")))


def text_may_hold_credentials(text: str) -> bool:
    """Whether any http(s) URL in ``text`` :func:`may_hold_credentials`."""
    return any(may_hold_credentials(m.group().rstrip(".,;:"))
               for m in _URL_IN_TEXT.finditer(text))


class Secret:
    """A string that never appears in output, logs, exceptions or ``repr``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:  # pickling would write the key somewhere; refuse
        raise TypeError("Secret values cannot be pickled")


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Field names match ``mrv.toml`` keys."""

    data_dir: Path = Path(DEFAULT_DATA_DIR)
    # chain
    network: str = "local"
    network_chosen: bool = False  # network came from a file, the environment or a flag
    rpc_url: str | None = None
    contract_address: str | None = None
    private_key: Secret | None = field(default=None, repr=False)
    keystore: Path | None = None
    keystore_password: Secret | None = field(default=None, repr=False)
    confirmations: int | None = None  # None: the network preset's default
    tx_timeout_s: float = 120.0
    # registry service (mrv registry serve): anchors for us, hands back complete proofs
    registry_url: str | None = None
    registry_token: Secret | None = field(default=None, repr=False)
    # measurement
    country_iso_code: str | None = None  # None: measurement module's documented default
    region: str | None = None
    online_lookup: bool = False
    pue: float = 1.0
    # how often CodeCarbon measures: one point of the record's power series each time
    measure_power_secs: float = 2.0
    # CodeCarbon's tracking_mode (TRACKING_MODES): the whole machine, or this process and
    # its descendants' share of CPU and RAM (what each covers: measurement.tracking_scope)
    # (None: not chosen; the tracker takes process mode on a node the job shares, else machine)
    tracking_mode: str | None = None
    # seconds between the tracker's progress lines on stderr (0: none)
    heartbeat_s: float = 30.0
    # experiment trackers whose active run gets the record's facts and files (LOG_TO_CHOICES)
    log_to: tuple[str, ...] = ()
    # RFC 3161 timestamp authorities (URLs or preset names) each record is sent to, right
    # after it is written (mrv_ml.anchoring.timestamp); none is contacted unless named
    tsa: tuple[str, ...] = ()
    # a run's budget (mrv_ml.run.budget): limits and what to do when one is crossed; None: no
    # limit, and on_budget None leaves the choice to the caller (tracker warn, mrv run stop)
    budget_kwh: float | None = None
    budget_co2_kg: float | None = None
    on_budget: str | None = None

    def replace(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced; ``None`` values are ignored."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **_coerce(clean))


# Environment variables, the seed's first. Value: Settings field.
ENV_VARS: dict[str, str] = {
    "BLOCKCHAIN_RPC_URL": "rpc_url",
    "CONTRACT_ADDRESS": "contract_address",
    "PRIVATE_KEY": "private_key",
    "NETWORK": "network",
    "MRV_DATA_DIR": "data_dir",
    "MRV_NETWORK": "network",
    "MRV_KEYSTORE": "keystore",
    "MRV_KEYSTORE_PASSWORD": "keystore_password",
    "MRV_CONFIRMATIONS": "confirmations",
    "MRV_TX_TIMEOUT": "tx_timeout_s",
    "MRV_COUNTRY": "country_iso_code",
    "MRV_REGION": "region",
    "MRV_ONLINE_LOOKUP": "online_lookup",
    "MRV_PUE": "pue",
    "MRV_MEASURE_POWER_SECS": "measure_power_secs",
    "MRV_TRACKING_MODE": "tracking_mode",
    "MRV_HEARTBEAT_S": "heartbeat_s",
    "MRV_REGISTRY_URL": "registry_url",
    "MRV_REGISTRY_TOKEN": "registry_token",
    "MRV_LOG_TO": "log_to",
    "MRV_TSA_URL": "tsa",
    "MRV_BUDGET_KWH": "budget_kwh",
    "MRV_BUDGET_CO2_KG": "budget_co2_kg",
    "MRV_ON_BUDGET": "on_budget",
}

# The experiment trackers mrv_ml.run.log_to.dispatch can log into.
LOG_TO_CHOICES = ("mlflow", "wandb")
# CodeCarbon's tracking modes, by its own names.
TRACKING_MODES = ("machine", "process")

_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_SECRET_FIELDS = {"private_key", "keystore_password", "registry_token"}
_PATH_FIELDS = {"data_dir", "keystore"}


# Checked before a run starts: a value found bad after it would cost the run's record.
# PUE: 1 is a perfect data centre; no real one is above 3.
# Measurement interval: each CodeCarbon reading costs CPU time (see
# benchmarks/tracker_overhead.py), so not below 0.1 s; above an hour a run's power series
# would be one flat line.
_NUMBER_RANGES = {"pue": (1.0, 3.0), "tx_timeout_s": (0.1, 86_400.0),
                  "measure_power_secs": (0.1, 3600.0), "heartbeat_s": (0.0, 86_400.0)}


def _coerce(values: Mapping[str, Any], source: str = "settings") -> dict[str, Any]:
    """Convert raw strings (from env or TOML) to the field types, with one-line errors."""
    out: dict[str, Any] = {}
    for name, raw in values.items():
        if name not in _FIELDS:
            raise ConfigError(f"{source}: unknown setting {name!r}")
        try:
            if name in _SECRET_FIELDS:
                out[name] = raw if isinstance(raw, Secret) else Secret(str(raw))
            elif name in _PATH_FIELDS:
                out[name] = Path(raw).expanduser()
            elif name == "confirmations":
                out[name] = int(raw)
                if out[name] < 0:
                    raise MRVValueError("must be >= 0")
            elif name in _NUMBER_RANGES:
                low, high = _NUMBER_RANGES[name]
                out[name] = float(raw)
                # NaN fails every comparison: "not low <= x <= high" refuses it too
                if not low <= out[name] <= high:
                    raise MRVValueError(f"must be a number from {low:g} to {high:g}")
            elif name == "country_iso_code":
                out[name] = str(raw).strip() or None
                if out[name] is not None and not re.fullmatch(r"[A-Za-z]{3}", out[name]):
                    raise MRVValueError("must be an ISO 3166 alpha-3 code such as FRA")
            elif name == "log_to":
                out[name] = _log_to(raw)
            elif name == "tsa":  # checked where used (anchoring.timestamp.tsa_url)
                items = raw.replace(",", " ").split() if isinstance(raw, str) else list(raw)
                out[name] = tuple(dict.fromkeys(str(i).strip() for i in items if str(i).strip()))
            elif name == "tracking_mode":
                out[name] = str(raw).strip().lower()
                if out[name] not in TRACKING_MODES:
                    raise MRVValueError(f"must be one of {', '.join(TRACKING_MODES)}")
            elif name in ("budget_kwh", "budget_co2_kg"):
                out[name] = float(raw)
                # zero or less could only stop the run at once; NaN fails the comparison too
                if not (math.isfinite(out[name]) and out[name] > 0):
                    raise MRVValueError("must be a positive number")
            elif name == "on_budget":
                out[name] = str(raw).strip().lower()
                if out[name] not in ("warn", "stop"):
                    raise MRVValueError("must be warn or stop")
            elif name == "online_lookup":
                out[name] = raw if isinstance(raw, bool) else str(raw).strip().lower() in (
                    "1", "true", "yes", "on")
            else:
                out[name] = str(raw) if raw != "" else None
        except ValueError as e:
            shown = "***" if name in _SECRET_FIELDS else repr(raw)
            raise ConfigError(f"{source}: invalid value {shown} for {name}: {e}") from None
    return out


def _log_to(raw: Any) -> tuple[str, ...]:
    """``"mlflow,wandb"`` (env), ``["mlflow"]`` (TOML, Python) -> ``("mlflow", "wandb")``:
    each once, in the order given; a name not in LOG_TO_CHOICES is refused now, before a
    run whose facts would then go nowhere."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    names: list[str] = []
    for item in items:
        name = str(item).strip().lower()
        if not name:
            continue
        if name not in LOG_TO_CHOICES:
            raise MRVValueError(f"{name!r} is not one of {', '.join(LOG_TO_CHOICES)}")
        if name not in names:
            names.append(name)
    return tuple(names)


def find_config_file(cwd: Path | None = None) -> Path | None:
    """``$MRV_CONFIG``, else ``./mrv.toml``, else ``~/.config/mrv-ml/config.toml``."""
    explicit = os.environ.get("MRV_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"MRV_CONFIG points to {path}, which is not a file")
        return path
    for candidate in ((cwd or Path.cwd()) / CONFIG_FILE_NAME,
                      Path.home() / ".config" / "mrv-ml" / "config.toml"):
        if candidate.is_file():
            return candidate
    return None


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    table = data.get("mrv", data)  # keys may sit under [mrv] or at top level
    if "private_key" in table:
        raise ConfigError(
            f"{path}: private_key must not be stored in a config file; "
            "use PRIVATE_KEY or an encrypted keystore")
    return _coerce(table, source=str(path))


def _read_dotenv(cwd: Path) -> dict[str, str]:
    path = cwd / ".env"
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_settings(overrides: Mapping[str, Any] | None = None, *, cwd: Path | None = None,
                  environ: Mapping[str, str] | None = None, use_dotenv: bool = True) -> Settings:
    """Resolve settings from every source; ``overrides`` (flags) win."""
    cwd = cwd or Path.cwd()
    env = dict(os.environ if environ is None else environ)
    if use_dotenv and not env.get("MRV_NO_DOTENV"):
        for key, value in _read_dotenv(cwd).items():
            env.setdefault(key, value)  # the real environment wins over .env
    values: dict[str, Any] = {}
    config_path = find_config_file(cwd)
    if config_path is not None:
        values.update(_read_config_file(config_path))
    from_env = {ENV_VARS[k]: v for k, v in env.items() if k in ENV_VARS and v != ""}
    values.update(_coerce(from_env, source="environment"))
    if overrides:
        values.update(_coerce({k: v for k, v in overrides.items() if v is not None},
                              source="command line"))
    return Settings(**values, network_chosen="network" in values)
