"""Hugging Face model cards: a record as the card's metadata, and the card pushed to the Hub.

Two top-level keys of the card's YAML block are ours (what they say, and claim, is
:mod:`mrv_ml.reporting.modelcard_metadata`):

- ``co2_eq_emissions``, in the shape Hugging Face defines
  (https://huggingface.co/docs/hub/model-cards-co2): ``emissions`` in grams of CO2e,
  ``source``, ``training_type``, ``geographical_location``, ``hardware_used``;
- ``mrv``: the MRV ID, the fingerprint (``sha256-jcs:<hex>``), the energy, where the
  fingerprint is anchored, the trust level in words, and the verification link.

Everything else in the card (the body, other keys, their order, their comments and
quoting) is left byte for byte: only the text of our two keys is replaced, or appended,
and the result is parsed again to prove that nothing else changed. The card is then read
back by ``huggingface_hub``'s own parser before anything is written.

``huggingface_hub`` (and PyYAML, which it brings) is an optional extra
(``pip install 'mrv-ml[hub]'``), imported only when a card is made.
"""

from __future__ import annotations

import importlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mrv_ml.errors import ConfigError, HubUnavailableError, MissingExtraError, ModelCardError
from mrv_ml.record.proof import Proof, find_proof
from mrv_ml.reporting.modelcard_metadata import CardMetadata, card_metadata
from mrv_ml.reporting.one_record import integrity_line, run_sentence
from mrv_ml.reporting.text import field_at, printable
from mrv_ml.storage import atomicfile

CO2_KEY = "co2_eq_emissions"
MRV_KEY = "mrv"
#: The keys of ``co2_eq_emissions`` this export owns; others an author added there are kept.
CO2_FIELDS = ("emissions", "source", "training_type", "geographical_location", "hardware_used")
CARD_NAME = "README.md"  # the file a Hub repository shows as its card
#: Deepest nesting of collections accepted in a card's metadata. PyYAML composes
#: recursively, so without a bound the limit would be Python's recursion limit, which
#: libraries raise at will (a card refused in one process was read in another).
MAX_METADATA_DEPTH = 64
EXTRA = "hub"


def _require(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"model cards need huggingface_hub: pip install 'mrv-ml[{EXTRA}]' "
            f"(import of {module} failed: {e})") from e


# --- the card's text ---------------------------------------------------------------------


_MD_SPECIAL = set("\\`*_{}[]<>#|~&!")


def _md(text: object) -> str:
    """Record text as literal Markdown on one line."""
    flat = printable(" ".join(str(text).split()))
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in flat)


def _dump(mapping: Mapping[str, Any], nl: str) -> str:
    yaml = _require("yaml")
    # width: never fold a long value across lines; allow_unicode: names stay readable.
    text: str = yaml.safe_dump(dict(mapping), sort_keys=False, allow_unicode=True,
                               default_flow_style=False, width=2**31 - 1)
    return text.replace("\n", nl)


def new_card(record: Mapping[str, Any], meta: CardMetadata, proof: Proof | None) -> str:
    """A minimal card: the metadata, a title and the run in two sentences."""
    model = field_at(record, "experiment", "model_name")
    title = model if model and model != "Unknown" else field_at(record, "experiment", "name")
    body = [f"# {_md(title or meta.mrv['mrv_id'])}", "", "## Environmental impact", "",
            run_sentence(record, _md, "CO₂e"), "", _md(integrity_line(record, proof))]
    if meta.mrv.get("verification_url"):
        body += ["", f"Verification: <{meta.mrv['verification_url']}>"]
    metadata = {CO2_KEY: meta.co2_eq_emissions, MRV_KEY: meta.mrv}
    return "---\n" + _dump(metadata, "\n") + "---\n\n" + "\n".join(body) + "\n"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    kinds: list[tuple[type | tuple[type, ...], str]] = [(bool, "a boolean"), ((int, float), "a number"), (str, "a string"),
             (list, "a list"), (dict, "a mapping")]
    kind = next((name for t, name in kinds if isinstance(value, t)), type(value).__name__)
    shown = printable(repr(value))
    return f"{kind} ({shown[:60] + '...' if len(shown) > 60 else shown})"


def _merged_co2(existing: Any, ours: Mapping[str, Any]) -> dict[str, Any]:
    """Our fields over an existing mapping: keys an author added stay, in their place; the
    ones we own are ours (removed when we do not know them), except ``training_type``,
    which a record cannot know: an author's stays unless one is given."""
    out = dict(existing) if isinstance(existing, dict) else {}
    for key in CO2_FIELDS:
        if key in ours:
            out[key] = ours[key]
        elif key != "training_type":
            out.pop(key, None)
    return out


def _yaml_problem(e: Exception, line_offset: int) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or type(e).__name__
    where = f" at line {line_offset + mark.line + 1}" if mark is not None else ""
    return f"{problem}{where}"


def _depth(yaml: ModuleType, block: str) -> int:
    """How deep ``block``'s collections nest, from PyYAML's scanner (which, unlike its
    composer, does not recurse); the scan stops as soon as the bound is passed."""
    opening = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken,
               yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken)
    closing = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
    depth = deepest = 0
    for token in yaml.scan(block, Loader=yaml.SafeLoader):
        if isinstance(token, opening):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_METADATA_DEPTH:
                break
        elif isinstance(token, closing):
            depth -= 1
    return deepest


def update_card(text: str, meta: CardMetadata, *, replace: bool = False,
                name: str = "the card") -> str:
    """``text`` (a card) with our two keys set, everything else as it was.

    Raises :class:`ModelCardError` for malformed YAML, a metadata block that is not a
    mapping, a key of ours given twice, or (unless ``replace``) a key of ours holding
    something of another shape than ours.
    """
    yaml = _require("yaml")
    repocard = _require("huggingface_hub.repocard")
    nl = "\r\n" if "\r\n" in text else "\n"
    match = repocard.REGEX_YAML_BLOCK.search(text)  # the Hub's own regex
    if match is None:
        # No metadata block: one is added in front, the card itself follows unchanged.
        result = "---" + nl + _dump({CO2_KEY: meta.co2_eq_emissions, MRV_KEY: meta.mrv},
                                    nl) + "---" + nl + text
        return _checked(result, meta, name)
    block = match.group(2)
    offset = text[:match.start(2)].count("\n")
    try:
        if _depth(yaml, block) > MAX_METADATA_DEPTH:
            raise ModelCardError(f"{name}: the metadata block is nested too deeply (more "
                                 f"than {MAX_METADATA_DEPTH} levels); nothing written")
        root = yaml.compose(block, Loader=yaml.SafeLoader)
        data = yaml.safe_load(block)
    except yaml.YAMLError as e:
        raise ModelCardError(f"{name}: the metadata block is not valid YAML "
                             f"({_yaml_problem(e, offset)}); nothing written") from e
    except RecursionError as e:  # a bound above did not hold: still no traceback
        raise ModelCardError(f"{name}: the metadata block is nested too deeply; nothing "
                             "written") from e
    if data is None:
        data, pairs = {}, []
    elif not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise ModelCardError(f"{name}: the metadata block is {_describe(data)}, not a "
                             "mapping of keys; nothing written")
    else:
        pairs = root.value
    ours = {CO2_KEY: _merged_co2(data.get(CO2_KEY), meta.co2_eq_emissions), MRV_KEY: meta.mrv}
    for key in (CO2_KEY, MRV_KEY):
        if [k.value for k, _ in pairs if isinstance(k, yaml.ScalarNode)].count(key) > 1:
            raise ModelCardError(f"{name}: {key} appears twice in the metadata; nothing "
                                 "written")
        if key in data and not replace and not _our_shape(key, data[key]):
            raise ModelCardError(
                f"{name}: {key} is already set to {_describe(data[key])}, not "
                f"{'the mapping Hugging Face defines' if key == CO2_KEY else 'an MRV block'}; "
                "--replace overwrites it; nothing written")
    expected = {**data, **ours}  # existing keys keep their place, new ones come last

    edited = block
    spans = sorted(((k.start_mark.index, v.end_mark.index, k.value) for k, v in pairs
                    if isinstance(k, yaml.ScalarNode) and k.value in ours), reverse=True)
    if root is not None and root.flow_style:
        edited = None  # `{a: 1}`: no place for block keys; rewritten below
    else:
        for start, end, key in spans:
            new = _dump({key: ours[key]}, nl)
            if not edited[start:end].endswith("\n"):
                new = new[:-len(nl)]
            edited = edited[:start] + new + edited[end:]
        missing = {k: v for k, v in ours.items() if k not in data}
        if missing:
            tail = _dump(missing, nl)[:-len(nl)]
            edited = (edited.rstrip("\r\n") + nl + tail) if edited.strip() else tail
        try:
            same = list(yaml.safe_load(edited).items()) == list(expected.items())
        except (yaml.YAMLError, AttributeError):
            same = False
        if not same:
            edited = None
    if edited is None:
        # The text edit could not be proved exact (flow style, an odd layout): the whole
        # block is written again from its values, in their order, as huggingface_hub does.
        edited = _dump(expected, nl)[:-len(nl)]
    result = text[:match.start(2)] + edited + text[match.end(2):]
    return _checked(result, meta, name)


def _our_shape(key: str, value: Any) -> bool:
    if key == CO2_KEY:
        return isinstance(value, dict)
    return isinstance(value, dict) and isinstance(value.get("mrv_id"), str)


def _checked(result: str, meta: CardMetadata, name: str) -> str:
    """``result`` as huggingface_hub's parser reads it must hold our blocks."""
    hub = _require("huggingface_hub")
    try:
        card = hub.ModelCard(result)
    except ValueError as e:  # its own refusal of the card, e.g. an invalid model-index
        raise ModelCardError(f"{name}: huggingface_hub cannot read the card: {e}; "
                             "nothing written") from e
    data = card.data.to_dict()
    co2 = data.get(CO2_KEY)
    if not isinstance(co2, dict) or co2.get("emissions") != meta.co2_eq_emissions["emissions"] \
            or data.get(MRV_KEY) != meta.mrv:
        raise ModelCardError(f"{name}: the updated card does not read back as written; "
                             "nothing written", key="internal")
    return result


def read_card(path: str | Path) -> str:
    """A card's text: UTF-8, as the Hub reads it; :class:`ModelCardError` otherwise."""
    from mrv_ml.record.strictjson import read_file_bytes

    data = read_file_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        raise ModelCardError(f"{path}: starts with a byte-order mark, behind which the Hub "
                             "does not see a metadata block; remove it first")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelCardError(f"{path}: not UTF-8 (byte {e.start}: {data[e.start]:#04x}); a "
                             "model card is UTF-8 text; nothing written",
                             key="invalid_utf8") from e


def write_card(path: Path, text: str) -> Path:
    """Replace ``path`` atomically, keeping its permissions."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o644
    return atomicfile.write_bytes(path, text.encode("utf-8"), mode=mode, what="the model card")


# --- the Hub -----------------------------------------------------------------------------


def push(text: str, repo_id: str, *, token: str | None = None, endpoint: str | None = None,
         commit_message: str | None = None) -> str:
    """Upload ``text`` as the card (``README.md``) of the model repository ``repo_id``;
    returns the commit's URL. The token is ``token``, else huggingface_hub's own (``HF_TOKEN``,
    or a ``hf auth login``); the endpoint ``endpoint``, else huggingface_hub's (``HF_ENDPOINT``).
    The card's exact bytes are uploaded. The token never appears in a message."""
    hub = _require("huggingface_hub")
    errors = _require("huggingface_hub.errors")
    token = token or hub.get_token()
    if not token:
        raise ConfigError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    try:
        transport: Any = importlib.import_module("httpx2").TransportError
    except ImportError:  # huggingface_hub 1.x talks through httpx itself
        transport = importlib.import_module("httpx").TransportError
    # HF_ENDPOINT read now: huggingface_hub reads it once, when it is first imported.
    api = hub.HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        info = api.upload_file(path_or_fileobj=text.encode("utf-8"), path_in_repo=CARD_NAME,
                               repo_id=repo_id, repo_type="model",
                               commit_message=commit_message or "Update model card (mrv-ml)")
    except errors.OfflineModeIsEnabled as e:
        raise ConfigError("cannot push: HF_HUB_OFFLINE is set") from e
    except errors.HFValidationError as e:
        raise ConfigError(f"{repo_id!r} is not a Hub repository ID (owner/name)") from e
    except errors.HfHubHTTPError as e:
        code = e.response.status_code if e.response is not None else None
        if code in (401, 403):
            raise ConfigError(f"the Hub refused the token for {repo_id} (HTTP {code})") from e
        if code == 404:
            raise ConfigError(f"no model repository {repo_id} on the Hub, or no access to "
                              "it (HTTP 404)") from e
        if code is not None and 400 <= code < 500:
            raise ModelCardError(f"the Hub refused the card for {repo_id} (HTTP {code}: "
                                 f"{_server_message(e)})") from e
        raise HubUnavailableError(f"the Hub did not take the card for {repo_id} "
                                  f"(HTTP {code}); try again later") from e
    except ValueError as e:  # the Hub's validate-yaml refused the metadata
        raise ModelCardError(f"the Hub refused the card for {repo_id}: "
                             f"{' '.join(str(e).split())[:200]}") from e
    except transport as e:
        raise HubUnavailableError(f"cannot reach the Hub to push {repo_id} "
                                  f"({type(e).__name__})") from e
    return str(getattr(info, "commit_url", info))


def _server_message(e: Any) -> str:
    message = getattr(e, "server_message", None)
    return " ".join(str(message).split())[:200] if message else "no reason given"


# --- one export --------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """What :func:`export` made: the card's text, what it claims, and from which record."""

    text: str
    metadata: CardMetadata
    record_path: Path


def export(ref: str | Path, *, settings: Any = None, card: str | Path | None = None,
           verify: bool = False, replace: bool = False, allow_unanchored: bool = False,
           training_type: str | None = None, dashboard_url: str | None = None) -> Export:
    """The card for the record ``ref`` (a file, or an ID or unique prefix in the store):
    ``card``'s text updated, or a new minimal card. ``verify`` runs a verification first
    (only VALID makes the card say "verified"). Writes nothing."""
    from mrv_ml.config import load_settings
    from mrv_ml.errors import MalformedProofError
    from mrv_ml.record.schema import load_record_file
    from mrv_ml.storage.store import RecordStore

    settings = settings or load_settings()
    path = RecordStore(settings.data_dir).resolve(ref)
    record = load_record_file(path)
    text = read_card(card) if card is not None else None
    proof, problem = find_proof(path, record["mrv_id"], settings.data_dir)
    if problem is not None:
        raise MalformedProofError(problem)
    verdict = None
    if verify:
        from mrv_ml.verification.verifier import verify as run_verify

        verdict = run_verify(path, proof=proof, settings=settings)
    meta = card_metadata(record, proof=proof, verdict=verdict, training_type=training_type,
                         dashboard_url=dashboard_url, allow_unanchored=allow_unanchored)
    if text is None:
        return Export(_checked(new_card(record, meta, proof), meta, "the new card"), meta, path)
    return Export(update_card(text, meta, replace=replace, name=str(card)), meta, path)
