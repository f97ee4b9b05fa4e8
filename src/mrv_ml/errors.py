"""Every error mrv-ml raises, under one base, each with the exit code the CLI uses.

Only the CLI exits; library code raises these. Third-party errors are translated
where they enter (``raise XError(...) from e``). Messages are one line, meant for
the user, and never contain secrets.
"""

from __future__ import annotations

import re

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
EXIT_PROOF_NEEDED = 9
EXIT_INTERNAL = 10
EXIT_LOCAL_ONLY = 11
EXIT_EVIDENCE_CONFLICT = 12
EXIT_REQUIREMENT_UNMET = 13
EXIT_USAGE = 64
EXIT_NOT_EXECUTABLE = 126
EXIT_COMMAND_NOT_FOUND = 127
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of our output went away


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """C0/C1 control characters (a newline, ANSI/OSC escape sequences that clear a screen or
    retitle a window) shown as ``\\xNN``: text from files made safe for one line of output."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class MRVError(Exception):
    """Base of all mrv-ml errors. ``str(err)`` is a one-line message for the user.

    ``key`` names the kind of problem in a stable, language-neutral way (the verdict cases
    in ``data/verdict_cases.json`` and the dashboard use the same keys); the class gives a
    default and a raise site may be more specific (``NotJSONError(msg, key="bom")``).
    """

    exit_code: int = EXIT_INTERNAL
    key: str = "internal"

    def __init__(self, message: str = "", *, key: str | None = None) -> None:
        # One line, whatever a file name or a record put into it (a newline, an escape
        # sequence that would clear the reader's terminal): control characters as \xNN.
        super().__init__(escape_controls(message))
        if key is not None:
            self.key = key

    def with_prefix(self, prefix: str) -> MRVError:
        """The same error (class and key) with ``prefix: `` in front of the message."""
        return type(self)(f"{prefix}: {self}", key=self.key)


# --- records and input -------------------------------------------------------------------


class RecordError(MRVError):
    """A record (or other input file) cannot be used."""

    key = "bad_input"
    exit_code = EXIT_BAD_INPUT


class NotJSONError(RecordError):
    """The file is not valid UTF-8 JSON (or is truncated)."""

    key = "not_json"


class NotARecordError(RecordError):
    """The JSON is well formed but is not an MRV record."""

    key = "not_a_record"


class SchemaValidationError(RecordError):
    """The record breaks the JSON Schema; the message names the field and the problem."""

    key = "schema"


class UnknownSchemaVersionError(RecordError):
    """The record declares a ``schema_version`` this version of mrv-ml does not know."""

    key = "unknown_schema_version"


class ProofMismatchError(RecordError):
    """The proof sidecar given belongs to another record."""

    key = "proof_of_another_record"


class MalformedProofError(RecordError):
    """A proof sidecar that cannot be used: not a proof, a field of the wrong type..."""

    key = "malformed_proof"


class ImportFileError(RecordError):
    """A file to import (CodeCarbon's ``emissions.csv``) cannot be used: its encoding, a
    missing column, a row that is not a measurement. The message names the row and column."""

    key = "bad_import_file"


class NonFiniteNumberError(RecordError):
    """NaN or infinity somewhere in a record: JSON cannot represent it faithfully."""

    key = "non_finite"


class ModelCardError(RecordError):
    """A Hugging Face model card that cannot be updated: not UTF-8, malformed YAML, a key of
    ours holding something else; or a card the Hub refused."""

    key = "bad_model_card"


class NotVerifiedError(MRVError):
    """An export asked for a verification that did not say VALID; the exit code is the
    verdict's (1 TAMPERED, 2 NOT FOUND, 5 SUBMITTER_MISMATCH)."""

    key = "not_verified"
    exit_code = EXIT_TAMPERED

    def __init__(self, message: str = "", *, key: str | None = None,
                 exit_code: int = EXIT_TAMPERED) -> None:
        super().__init__(message, key=key)
        self.exit_code = exit_code


class ProofNeededError(MRVError):
    """Verification cannot conclude without the record's proof sidecar (a record anchored in
    a Merkle batch is invisible on chain under its ID)."""

    exit_code = EXIT_PROOF_NEEDED
    key = "proof_needed"


class LocalOnlyError(MRVError):
    """The proof is of its author's own embedded chain, which is not on this machine: it
    cannot be checked here (and proves nothing to anyone but its author)."""

    exit_code = EXIT_LOCAL_ONLY
    key = "local_only_elsewhere"


class EvidenceConflictError(MRVError):
    """Two readings of the same evidence disagree (two endpoints of one chain; our Merkle
    check and the registry's): someone is lying or something is broken, never a verdict."""

    exit_code = EXIT_EVIDENCE_CONFLICT
    key = "evidence_conflict"


# --- the local store ---------------------------------------------------------------------


class RequirementUnmetError(MRVError):
    """The evidence was checked, and it does not meet what the reviewer required
    (``mrv verify --require``): each term that did not hold is named."""

    exit_code = EXIT_REQUIREMENT_UNMET
    key = "requirement_unmet"


class StoreError(MRVError):
    """The record store cannot be read or written (permissions, full disk, ...)."""

    key = "store"
    exit_code = EXIT_STORE


class RecordNotFoundError(StoreError):
    """No record with that ID in the store."""

    key = "record_not_found"
    exit_code = EXIT_NOT_FOUND


class RecordExistsError(StoreError):
    """A record with that ID is already stored; records are never overwritten."""

    key = "record_exists"


# --- the registry service's database -----------------------------------------------------


class RegistryDatabaseError(MRVError):
    """The registry's database cannot be reached or opened (server down, file unreadable,
    schema newer than this mrv-ml). The message names the database without its password."""

    key = "registry_database"
    exit_code = EXIT_STORE


class RegistryUnavailableError(MRVError):
    """A registry service cannot be reached, or answered that it cannot serve now (busy,
    its database down): try again later; the record stays pending meanwhile."""

    key = "registry_unreachable"
    exit_code = EXIT_CHAIN_UNREACHABLE


class TimestampError(MRVError):
    """A timestamp authority could not be asked, or its answer does not hold (not granted,
    another imprint or nonce, a bad signature, no timeStamping certificate): nothing is
    written; try again, or another authority."""

    key = "timestamp_failed"
    exit_code = EXIT_CHAIN_UNREACHABLE


class HubUnavailableError(MRVError):
    """The Hugging Face Hub cannot be reached or did not take an upload (5xx): try again."""

    key = "hub_unreachable"
    exit_code = EXIT_CHAIN_UNREACHABLE


class RegistryConflictError(MRVError):
    """A registry operation contradicts what the database holds: a leaf already in another
    batch, a batch in the wrong state for the step asked of it, no such batch."""

    key = "registry_conflict"
    exit_code = EXIT_STORE


class ProgressError(MRVError, ValueError):
    """Progress reported for a forecast cannot be used: an unknown or zero total, a
    negative count, more done than the total, or a count that went backwards."""

    key = "bad_progress"
    exit_code = EXIT_BAD_INPUT


# --- configuration and keys --------------------------------------------------------------


class ConfigError(MRVError):
    """Configuration is wrong: unknown network, bad address, bad key, chain id mismatch..."""

    key = "config"
    exit_code = EXIT_CONFIG


class KeyConfigError(ConfigError):
    """A private key or keystore is invalid, missing, or refused for this network."""

    key = "key"


class TimestampUntrustedError(ConfigError):
    """An RFC 3161 timestamp whose signing certificate does not chain to any root the
    reviewer named (``--tsa-root``): it may be well formed, but it proves nothing to them."""

    key = "timestamp_untrusted"


class ChainIdMismatchError(ConfigError):
    """The node reports a chain id other than the configured network's."""

    key = "chain_id_mismatch"


class NoContractError(ConfigError):
    """There is no registry contract at the configured address."""

    key = "no_contract"


class NotARegistryError(ConfigError):
    """The contract at the address is not a released MRVRegistry (its code is not listed)."""

    key = "not_a_registry"


class AnchorNotOnChainError(ConfigError):
    """The proof's anchoring block or transaction is not on the chain the node serves."""

    key = "anchor_not_on_chain"


# --- the chain ---------------------------------------------------------------------------


class ChainError(MRVError):
    """A chain operation failed (reverted, out of gas, timed out...)."""

    key = "chain"
    exit_code = EXIT_TRANSACTION


class ChainUnavailableError(ChainError):
    """The chain cannot be reached (node down, connection refused, timeout)."""

    key = "chain_unreachable"
    exit_code = EXIT_CHAIN_UNREACHABLE


class ChainReadError(ChainError):
    """The node answered, but refused or failed a read (a log range too large, a call
    that reverted...): the evidence cannot be read, which is not a failed transaction."""

    exit_code = EXIT_CHAIN_UNREACHABLE
    key = "chain_read_failed"


class TransactionFailedError(ChainError):
    """A transaction was sent but reverted, ran out of gas or was never mined."""

    key = "transaction_failed"


class LocalChainError(ChainError):
    """The embedded local chain's database is unusable."""

    key = "local_chain"


# --- GPUs (NVML, translated in mrv_ml.measure.gpu.nvml; the tracker records them, never raises them) --


class GPUError(MRVError):
    """NVML could not tell us about the GPUs."""

    key = "gpu"


class GPUUnavailableError(GPUError):
    """No NVML library, driver or GPU: the normal case on many machines."""

    key = "gpu_unavailable"


class GPULostError(GPUError):
    """A GPU disappeared (fell off the bus, or the container lost it)."""

    key = "gpu_lost"


class NVMLFailedError(GPUError):
    """NVML answered a call with an error."""

    key = "nvml_failed"


# --- running commands --------------------------------------------------------------------


class CommandNotFoundError(MRVError):
    """``mrv run`` was asked to run a program that does not exist."""

    key = "command_not_found"
    exit_code = EXIT_COMMAND_NOT_FOUND


class CommandNotExecutableError(MRVError):
    """``mrv run`` was asked to run a file that cannot be executed."""

    key = "command_not_executable"
    exit_code = EXIT_NOT_EXECUTABLE


class MissingExtraError(MRVError):
    """An optional integration needs a package that is not installed."""

    key = "missing_extra"
    exit_code = EXIT_CONFIG


# --- the Python API used wrongly -------------------------------------------------------


class MRVValueError(MRVError, ValueError):
    """A value given to mrv-ml (an argument, a setting, a filter, a report format) cannot be
    used. Also a ``ValueError``: callers and libraries (pydantic's validators) catch that."""

    key = "bad_value"
    exit_code = EXIT_BAD_INPUT


class MRVStateError(MRVError, RuntimeError):
    """An object used out of order: ``stop()`` before ``start()``, a tracker started twice,
    a finished W&B run. Also a ``RuntimeError``, which is what callers expect of that."""

    key = "bad_state"
    exit_code = EXIT_INTERNAL
