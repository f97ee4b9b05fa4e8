"""The identities a reviewer pins, as small composable policies (after sigstore-python's
``verify/policy.py``): :class:`Submitter` (``--submitter``: whose registration counts),
:class:`Signer` (``--signer``: who must have signed the record's fingerprint) and
:class:`AllOf` (several at once).

A policy does not decide anything: it carries its pins into the evidence
(:attr:`~mrv_ml.verification.verdict.Evidence.pin` and ``signer_pin``), and
:func:`mrv_ml.verification.verdict.decide` alone turns a registration or signature by
someone else into SUBMITTER_MISMATCH, as it does for ``dashboard/verdict.js``. There is no
``AnyOf``: the verdict rules (and the shared ``data/verdict_cases.json``) compare one
submitter and one signer, so "any of these" would be a new rule, not a new policy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

from mrv_ml.errors import ConfigError

__all__ = ["AllOf", "Policy", "Signer", "Submitter", "checked_address", "pinned"]


@functools.lru_cache(maxsize=1024)
def _checksummed(value: str) -> str | None:
    from eth_utils import is_address, to_checksum_address

    return str(to_checksum_address(value)) if is_address(value) else None


def checked_address(value: str, what: str) -> str:
    """``value`` checksummed; ConfigError (``invalid <what> address``) if it is not one."""
    # Cached: verifying a directory checks the same few addresses thousands of times.
    checked = _checksummed(value) if isinstance(value, str) else None
    if checked is None:
        raise ConfigError(f"invalid {what} address {str(value)[:60]!r}")
    return checked


class Policy(Protocol):
    """What a reviewer expects: the submitter and the signer it pins (None: not pinned)."""

    @property
    def submitter(self) -> str | None: ...

    @property
    def signer(self) -> str | None: ...


@dataclass(frozen=True)
class Submitter:
    """Only this address's registration counts (``--submitter``); checksummed."""

    address: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", checked_address(self.address, "submitter"))

    @property
    def submitter(self) -> str | None:
        return self.address

    @property
    def signer(self) -> str | None:
        return None


@dataclass(frozen=True)
class Signer:
    """This researcher must have signed the record's fingerprint (``--signer``);
    checksummed."""

    address: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", checked_address(self.address, "signer"))

    @property
    def submitter(self) -> str | None:
        return None

    @property
    def signer(self) -> str | None:
        return self.address


def _one(pins: list[str], what: str) -> str | None:
    distinct = {p.lower(): p for p in pins}
    if len(distinct) > 1:
        raise ConfigError(f"conflicting {what} pins {', '.join(distinct.values())}: a record "
                          f"has one {what} to compare")
    return pins[0] if pins else None


class AllOf:
    """Every policy given at once; none given pins nothing. Two different addresses for
    the same role cannot both hold: ConfigError."""

    def __init__(self, *policies: Policy) -> None:
        self.policies = policies
        self._submitter = _one([p.submitter for p in policies if p.submitter], "submitter")
        self._signer = _one([p.signer for p in policies if p.signer], "signer")

    @property
    def submitter(self) -> str | None:
        return self._submitter

    @property
    def signer(self) -> str | None:
        return self._signer

    def __repr__(self) -> str:
        return f"AllOf({', '.join(map(repr, self.policies))})"


def pinned(submitter: str | None, signer: str | None) -> AllOf:
    """The policy of ``--submitter`` and ``--signer`` (empty or None: not pinned),
    checked in that order."""
    policies: list[Policy] = []
    if submitter:
        policies.append(Submitter(submitter))
    if signer:
        policies.append(Signer(signer))
    return AllOf(*policies)
