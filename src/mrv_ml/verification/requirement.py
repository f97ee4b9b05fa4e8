"""What a reviewer requires before a record counts as VALID (``mrv verify --require``), and
the one rule that composes the evidence of a proof's anchors into one status.

The language, after sigstore-python's composable policies (``AllOf``, ``AnyOf``)::

    requirement := term | all-of(requirement, ...) | any-of(requirement, ...)
    term        := chain:public    the chain anchor is VALID on a public chain
                 | chain:ID        ... on the chain of this ID (chain:31337)
                 | chain:any       ... on whatever chain the proof names
                 | tsa:ROOT        an RFC 3161 timestamp VALID under this root (a PEM file,
                                   or a preset's built-in root: tsa:sigstore)
                 | signer:0x...    this address signed the record's fingerprint (or, for an
                                   attestation, its envelope)
                 | key:PUB.pem     this standard key signed the attestation

``@FILE`` reads the requirement from a file. ``signer:`` and ``key:`` say who vouches, not
that the record existed unchanged: a requirement they alone could meet is refused.

Each anchor kind has its own pure decision, made before this module sees it: the chain's
(:func:`mrv_ml.verification.verdict.decide`), each timestamp's
(:func:`mrv_ml.verification.timestamp.check_timestamp`), each signature's. :func:`decide` is
the composition, and the only one: evidence that the record changed (a TAMPERED chain
verdict, a trusted token of other content) is never outvoted: beside a met requirement it
is a conflict (no verdict), else TAMPERED; otherwise the requirement met is VALID, and
unmet it is a failure naming every term that did not hold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml.errors import ConfigError, MRVError
from mrv_ml.record.trust import Trust
from mrv_ml.verification.model import Verdict
from mrv_ml.verification.timestamp import StampStatus, TimestampCheck, root_fingerprint
from mrv_ml.verification.verdict import VerdictStatus

if TYPE_CHECKING:
    from mrv_ml.verification.keys import PublicKey

__all__ = ["AllOf", "Anchors", "AnyOf", "ChainTerm", "Decision", "KeyTerm", "Requirement",
           "SignerTerm", "TsaTerm", "decide", "default_requirement", "parse_requirement",
           "roots_of", "terms"]

MAX_TEXT = 4096
MAX_TERMS = 64
MAX_DEPTH = 16


@dataclass(frozen=True)
class ChainTerm:
    text: str
    public: bool = False
    chain_id: int | None = None


@dataclass(frozen=True)
class TsaTerm:
    text: str
    roots: tuple[Any, ...] = field(compare=False)  # cryptography X.509 certificates
    fingerprints: frozenset[str] = frozenset()  # their SHA-256, hex


@dataclass(frozen=True)
class SignerTerm:
    text: str
    address: str  # checksummed


@dataclass(frozen=True)
class KeyTerm:
    text: str
    key: PublicKey = field(compare=False)


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Requirement, ...]

    @property
    def text(self) -> str:
        return f"all-of({', '.join(p.text for p in self.parts)})"


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Requirement, ...]

    @property
    def text(self) -> str:
        return f"any-of({', '.join(p.text for p in self.parts)})"


Term = ChainTerm | TsaTerm | SignerTerm | KeyTerm
Requirement = Term | AllOf | AnyOf


# --- reading it ------------------------------------------------------------------------------

_TOKEN = re.compile(r"all-of\(|any-of\(|\)|,|[^(),\s]+")  # a term holds no space


def _bad(text: str, problem: str) -> ConfigError:
    return ConfigError(f"--require {text[:80]!r}: {problem}", key="bad_requirement")


def _term(word: str, whole: str, load_roots: Any, load_key: Any) -> Term:
    from mrv_ml.verification.policy import checked_address

    kind, sep, value = word.partition(":")
    if not sep or not value:
        raise _bad(whole, f"{word!r} is not a term (chain:public, chain:ID, chain:any, "
                          "tsa:ROOT, signer:0x..., key:PUB.pem)")
    if kind == "chain":
        if value == "public":
            return ChainTerm(word, public=True)
        if value == "any":
            return ChainTerm(word)
        if value.isascii() and value.isdigit() and 0 < int(value) < 2**63:
            return ChainTerm(word, chain_id=int(value))
        raise _bad(whole, f"{word!r}: a chain is 'public', 'any' or a chain ID")
    if kind == "tsa":
        roots = tuple(load_roots([value]))
        return TsaTerm(word, roots, frozenset(root_fingerprint(r) for r in roots))
    if kind == "signer":
        return SignerTerm(word, checked_address(value, "signer"))
    if kind == "key":
        return KeyTerm(word, load_key(value))
    raise _bad(whole, f"unknown term {kind + ':'!r} (chain:, tsa:, signer:, key:)")


def parse_requirement(text: str, *, load_roots: Any = None, load_key: Any = None
                      ) -> Requirement:
    """The requirement ``text`` (or, for ``@FILE``, that file's) in the language above.
    ConfigError (exit 7, key ``bad_requirement``) naming what is wrong; the roots and keys
    it names are read here, and their errors are theirs."""
    if load_roots is None:
        from mrv_ml.anchoring.timestamp import load_roots
    if load_key is None:
        from mrv_ml.verification.keys import load_public_key as load_key
    if text.startswith("@"):
        from mrv_ml.record.strictjson import read_file_bytes

        try:
            text = read_file_bytes(Path(text[1:])).decode("utf-8")
        except (MRVError, UnicodeDecodeError) as e:
            raise _bad(text, f"cannot read it: {e}") from None
        text = " ".join(line.split("#", 1)[0] for line in text.splitlines())
    if len(text) > MAX_TEXT:
        raise _bad(text, f"longer than {MAX_TEXT} characters")
    tokens = _tokens(text)
    if len([t for t in tokens if t not in ("all-of(", "any-of(", ")", ",")]) > MAX_TERMS:
        raise _bad(text, f"more than {MAX_TERMS} terms")
    pos = 0

    def parse(depth: int) -> Requirement:
        nonlocal pos
        if depth > MAX_DEPTH:
            raise _bad(text, f"nested more than {MAX_DEPTH} deep")
        if pos >= len(tokens):
            raise _bad(text, "it ends where a term was expected")
        token = tokens[pos]
        pos += 1
        if token in ("all-of(", "any-of("):
            parts = [parse(depth + 1)]
            while pos < len(tokens) and tokens[pos] == ",":
                pos += 1
                parts.append(parse(depth + 1))
            if pos >= len(tokens) or tokens[pos] != ")":
                raise _bad(text, f"{token} is not closed")
            pos += 1
            return (AllOf if token == "all-of(" else AnyOf)(tuple(parts))
        if token in (")", ","):
            raise _bad(text, f"{token!r} where a term was expected")
        return _term(token, text, load_roots, load_key)

    requirement = parse(0)
    if pos != len(tokens):
        raise _bad(text, f"{tokens[pos]!r} after the end of the requirement")
    if not _needs_an_anchor(requirement):
        raise _bad(text, "signer: and key: say who vouches, not that the record existed "
                         "unchanged: require a chain: or tsa: term beside them (all-of)")
    return requirement


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return tokens
        token = _TOKEN.match(text, pos)
        if token is None:
            raise _bad(text, f"{text[pos:pos + 20]!r} is outside the language")
        tokens.append(token.group())
        pos = token.end()


def _needs_an_anchor(r: Requirement) -> bool:
    """Whether every way of meeting ``r`` includes a chain or timestamp term."""
    if isinstance(r, ChainTerm | TsaTerm):
        return True
    if isinstance(r, AllOf):
        return any(_needs_an_anchor(p) for p in r.parts)
    if isinstance(r, AnyOf):
        return all(_needs_an_anchor(p) for p in r.parts)
    return False


def terms(r: Requirement) -> list[Term]:
    """The terms of ``r``, in the order written."""
    if isinstance(r, AllOf | AnyOf):
        return [t for p in r.parts for t in terms(p)]
    return [r]


def roots_of(r: Requirement) -> list[Any]:
    """Every root the requirement names (to check the proof's timestamps under)."""
    return [root for t in terms(r) if isinstance(t, TsaTerm) for root in t.roots]


def default_requirement(tsa_roots: Sequence[Any], pinned: bool) -> Requirement:
    """What ``mrv verify`` requires without --require: the chain anchor the proof names, or
    a timestamp under any root named with --tsa-root; only the chain when a submitter or a
    signer is pinned (a timestamp says nothing of who registered or signed)."""
    chain = ChainTerm("chain:any")
    if pinned or not tsa_roots:
        return chain
    return AnyOf((chain, TsaTerm("tsa:--tsa-root", tuple(tsa_roots),
                                 frozenset(root_fingerprint(r) for r in tsa_roots))))


# --- deciding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchors:
    """Each anchor's own result, decided before composition."""

    chain: Verdict | MRVError | None  # None: the proof has no chain anchor to check
    stamps: tuple[TimestampCheck, ...] = ()
    signers: frozenset[str] = frozenset()  # lowercase addresses whose signature checks
    keyids: frozenset[str] = frozenset()  # standard keys whose signature checks


def _chain_holds(t: ChainTerm, chain: Verdict | MRVError | None) -> tuple[bool, str]:
    if not isinstance(chain, Verdict):
        return False, ("the proof has no chain anchor" if chain is None
                       else f"the chain anchor cannot be checked: {chain}")
    if chain.status is not VerdictStatus.VALID:
        return False, f"the chain says {chain.status.value}"
    if t.public and chain.trust != Trust.PUBLIC.value:
        return False, f"anchored on chain {chain.chain_id}, which is not public ({chain.trust})"
    if t.chain_id is not None and chain.chain_id != t.chain_id:
        return False, f"anchored on chain {chain.chain_id}, not {t.chain_id}"
    return True, f"VALID on chain {chain.chain_id} ({chain.trust})"


def _stamp_holds(t: TsaTerm, stamps: Sequence[TimestampCheck]) -> tuple[bool, str]:
    under = [s for s in stamps if t.fingerprints & set(s.roots_sha256)]
    valid = next((s for s in under if s.status is StampStatus.VALID), None)
    if valid is not None:
        return True, valid.detail
    if under:
        return False, under[0].detail
    if not stamps:
        return False, "the proof holds no RFC 3161 timestamp"
    return False, f"no timestamp of the proof chains to it ({stamps[0].detail})"


def holds(r: Requirement, a: Anchors) -> tuple[bool, list[tuple[str, bool, str]]]:
    """Whether ``r`` holds for ``a``, and each term's (text, held, why), as written."""
    if isinstance(r, AllOf | AnyOf):
        results = [holds(p, a) for p in r.parts]
        said = [line for _, lines in results for line in lines]
        met = (all if isinstance(r, AllOf) else any)(ok for ok, _ in results)
        return met, said
    if isinstance(r, ChainTerm):
        ok, why = _chain_holds(r, a.chain)
    elif isinstance(r, TsaTerm):
        ok, why = _stamp_holds(r, a.stamps)
    elif isinstance(r, SignerTerm):
        ok = r.address.lower() in a.signers
        why = "signed by it" if ok else "no signature by it checks"
    else:
        ok = r.key.keyid in a.keyids
        why = "signed by it" if ok else "no signature by it checks"
    return ok, [(r.text, ok, why)]


@dataclass(frozen=True)
class Decision:
    """``status``: VALID, TAMPERED, or None for no verdict: ``conflict`` (evidence that the
    record changed beside evidence meeting the requirement) or ``unmet``. ``basis``: the
    anchor the verdict stands on: "chain", or the index of a timestamp."""

    status: VerdictStatus | None
    basis: str | int | None
    terms: tuple[tuple[str, bool, str], ...]
    conflict: str | None = None  # what said the record changed
    unmet: bool = False


def decide(r: Requirement, a: Anchors) -> Decision:
    """The composition rule (see the module's docstring)."""
    met, said = holds(r, a)
    lines = tuple(said)
    chain_valid = isinstance(a.chain, Verdict) and a.chain.status is VerdictStatus.VALID
    if isinstance(a.chain, Verdict) and a.chain.status is VerdictStatus.TAMPERED:
        changed: tuple[str, int | str] | None = ("the chain says TAMPERED", "chain")
    else:  # only a token under a root the reviewer named is TAMPERED (check_timestamp)
        i = next((i for i, s in enumerate(a.stamps) if s.status is StampStatus.TAMPERED), None)
        changed = (a.stamps[i].detail, i) if i is not None else None
    if changed is not None:
        if met:
            return Decision(None, None, lines, conflict=changed[0])
        return Decision(VerdictStatus.TAMPERED, changed[1], lines)
    if not met:
        return Decision(None, None, lines, unmet=True)
    # the verdict stands on the anchor that met the requirement: the chain if a chain term
    # held (a VALID local chain beside a met tsa: term says nothing to this reviewer)
    if chain_valid and any(isinstance(t, ChainTerm) and _chain_holds(t, a.chain)[0]
                           for t in terms(r)):
        return Decision(VerdictStatus.VALID, "chain", lines)
    stamp_terms = [t for t in terms(r) if isinstance(t, TsaTerm)]
    basis = next(i for i, s in enumerate(a.stamps) if s.status is StampStatus.VALID
                 and any(t.fingerprints & set(s.roots_sha256) for t in stamp_terms))
    return Decision(VerdictStatus.VALID, basis, lines)
