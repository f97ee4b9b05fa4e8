"""Every error mrv-ml raises, under one base, each with the exit code the CLI uses.

Only the CLI exits; library code raises these. Third-party errors are translated
where they enter (``raise XError(...) from e``). Messages are one line, meant for
the user, and never contain secrets.
"""

from __future__ import annotations

# Exit codes. 0-5 are the verdict codes of `mrv verify` (see verify.Verdict).
EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_NOT_FOUND = 2
EXIT_BAD_INPUT = 3
EXIT_CHAIN_UNREACHABLE = 4
EXIT_SUBMITTER_MISMATCH = 5
EXIT_STORE = 6
EXIT_CONFIG = 7
EXIT_TRANSACTION = 8
EXIT_INTERNAL = 10
EXIT_USAGE = 64
EXIT_NOT_EXECUTABLE = 126
EXIT_COMMAND_NOT_FOUND = 127
EXIT_INTERRUPTED = 130


class MRVError(Exception):
    """Base of all mrv-ml errors. ``str(err)`` is a one-line message for the user."""

    exit_code: int = EXIT_INTERNAL


# --- records and input -------------------------------------------------------------------


class RecordError(MRVError):
    """A record (or other input file) cannot be used."""

    exit_code = EXIT_BAD_INPUT


class NotJSONError(RecordError):
    """The file is not valid UTF-8 JSON (or is truncated)."""


class NotARecordError(RecordError):
    """The JSON is well formed but is not an MRV record."""


class SchemaValidationError(RecordError):
    """The record breaks the JSON Schema; the message names the field and the problem."""


class UnknownSchemaVersionError(RecordError):
    """The record declares a ``schema_version`` this version of mrv-ml does not know."""


class NonFiniteNumberError(RecordError):
    """NaN or infinity somewhere in a record: JSON cannot represent it faithfully."""


# --- the local store ---------------------------------------------------------------------


class StoreError(MRVError):
    """The record store cannot be read or written (permissions, full disk, ...)."""

    exit_code = EXIT_STORE


class RecordNotFoundError(StoreError):
    """No record with that ID in the store."""

    exit_code = EXIT_NOT_FOUND


class RecordExistsError(StoreError):
    """A record with that ID is already stored; records are never overwritten."""


# --- configuration and keys --------------------------------------------------------------


class ConfigError(MRVError):
    """Configuration is wrong: unknown network, bad address, bad key, chain id mismatch..."""

    exit_code = EXIT_CONFIG


class KeyConfigError(ConfigError):
    """A private key or keystore is invalid, missing, or refused for this network."""


class ChainIdMismatchError(ConfigError):
    """The node reports a chain id other than the configured network's."""


class NoContractError(ConfigError):
    """There is no registry contract at the configured address."""


# --- the chain ---------------------------------------------------------------------------


class ChainError(MRVError):
    """A chain operation failed (reverted, out of gas, timed out...)."""

    exit_code = EXIT_TRANSACTION


class ChainUnavailableError(ChainError):
    """The chain cannot be reached (node down, connection refused, timeout)."""

    exit_code = EXIT_CHAIN_UNREACHABLE


class TransactionFailedError(ChainError):
    """A transaction was sent but reverted, ran out of gas or was never mined."""


class LocalChainError(ChainError):
    """The embedded local chain's database is unusable."""


# --- running commands --------------------------------------------------------------------


class CommandNotFoundError(MRVError):
    """``mrv run`` was asked to run a program that does not exist."""

    exit_code = EXIT_COMMAND_NOT_FOUND


class CommandNotExecutableError(MRVError):
    """``mrv run`` was asked to run a file that cannot be executed."""

    exit_code = EXIT_NOT_EXECUTABLE


class MissingExtraError(MRVError):
    """An optional integration needs a package that is not installed."""

    exit_code = EXIT_CONFIG
