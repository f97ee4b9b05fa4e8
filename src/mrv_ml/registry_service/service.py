"""``mrv registry serve``: the database, the chain connection, the anchoring loop and the
HTTP API put together, under uvicorn.

:func:`build` makes the pieces (tests run them in a thread); :func:`serve` runs them until
SIGINT/SIGTERM, then stops taking requests, lets the anchoring run in progress finish and
closes the database. Logs are one JSON object per line on stderr.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrv_ml.config import Settings, redact_text
from mrv_ml.errors import ConfigError, MissingExtraError

try:
    import fastapi  # noqa: F401
    import prometheus_client  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as e:  # pragma: no cover - the registry extra is not installed
    raise MissingExtraError("the registry service needs FastAPI, uvicorn and prometheus-client:"
                            f" pip install 'mrv-ml[registry]' (import failed: {e})") from e

from mrv_ml.registry_service.anchoring import DEFAULT_MAX_LEAVES, AnchoringLoop, BatchAnchorer
from mrv_ml.registry_service.app import RateLimiter, ServiceConfig, ServiceState, create_app
from mrv_ml.registry_service.db import RegistryDB, open_database
from mrv_ml.registry_service.proofs import ChainFacts

DEFAULT_INTERVAL_S = 600.0
DEFAULT_PORT = 8700
DATABASE_FILE = "registry.sqlite"


@dataclass
class RegistryService:
    """A runnable registry: ``app`` (ASGI) and what it holds."""

    app: Any
    state: ServiceState
    loop: AnchoringLoop | None
    db: RegistryDB
    conn: Any

    def close(self) -> None:
        if self.loop is not None:
            self.loop.stop()
        self.state.writer.close()  # what is queued is written before the database closes
        self.conn.close()
        self.db.close()


def default_database(settings: Settings) -> str:
    return str(Path(settings.data_dir) / DATABASE_FILE)


def read_token_file(path: Path) -> dict[str, str]:
    """``NAME TOKEN`` per line (``#`` comments): secret -> name. Tokens are never shown."""
    tokens: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the token file {path}: {e}") from None
    for number, line in enumerate(lines, 1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if len(parts) != 2 or len(parts[1]) < 16:
            raise ConfigError(f"{path}:{number}: expected 'NAME TOKEN' with a token of at "
                              "least 16 characters")
        tokens[parts[1]] = parts[0]
    return tokens


def build(settings: Settings, *, database: str | None = None, interval_s: float =
          DEFAULT_INTERVAL_S, base_url: str, tokens: Mapping[str, str] | None = None,
          require_token: bool = False, max_record_bytes: int | None = None,
          rate_per_second: float | None = None, max_leaves: int = DEFAULT_MAX_LEAVES,
          anchoring: bool = True) -> RegistryService:
    """Open the database (migrating it), connect to the chain with the operator's key, and
    make the app. ``anchoring=False``: a process that serves (submissions and reads) but
    never anchors, beside one that does on the same database."""
    from mrv_ml.chain.connection import connect

    if interval_s <= 0:
        raise ConfigError("the anchoring interval must be positive")
    if require_token and not tokens:
        raise ConfigError("--require-token needs tokens (--token-file)")
    db = open_database(database or default_database(settings))
    try:
        conn = connect(settings, need_signer=anchoring)
    except BaseException:
        db.close()
        raise
    network = conn.network
    facts = ChainFacts(network=network.name, chain_id=conn.chain_id,
                       contract_address=conn.registry_address,
                       operator=conn.signer_address or "", registry_block=conn.registry_block,
                       confirmations=network.confirmations,
                       explorer_tx_template=network.explorer_tx_url)
    config = ServiceConfig(
        base_url=base_url.rstrip("/"), interval_s=interval_s, tokens=dict(tokens or {}),
        require_token=require_token,
        **({"max_record_bytes": max_record_bytes} if max_record_bytes else {}),
        rate_limit=RateLimiter(rate_per_second, max(1.0, rate_per_second * 2))
        if rate_per_second else None)
    loop = AnchoringLoop(BatchAnchorer(db, conn, max_leaves), interval_s) if anchoring else None
    state = ServiceState(db, facts, config, loop)
    app = create_app(state)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        if loop is not None:
            loop.start()
        yield
        if loop is not None:
            loop.stop()  # a batch being sent finishes (or the next start finishes it)

    app.router.lifespan_context = lifespan
    return RegistryService(app, state, loop, db, conn)


class _JSONFormatter(logging.Formatter):
    """One JSON object per line, with the ``extra`` fields; secrets redacted."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
                                "level": record.levelname.lower(), "logger": record.name,
                                "message": redact_text(record.getMessage())}
        data.update({k: v for k, v in vars(record).items() if k not in self._STANDARD})
        if record.exc_info:
            data["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(data, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JSONFormatter())
    for name in ("mrv_ml", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def serve(service: RegistryService, host: str, port: int) -> None:
    """Run under uvicorn until SIGINT/SIGTERM (graceful: requests in flight finish)."""
    import uvicorn

    configure_logging()
    server = uvicorn.Server(uvicorn.Config(service.app, host=host, port=port, log_config=None,
                                           timeout_graceful_shutdown=30))
    try:
        server.run()
    finally:
        service.close()
