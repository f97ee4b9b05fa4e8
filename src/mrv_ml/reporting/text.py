"""Untrusted text made safe for where it is shown, and the links reports print.

Record text comes from whoever wrote the record: every rendering passes it through here,
escaped for its medium (the terminal: :func:`printable`; LaTeX: :func:`latex_escape`,
:func:`latex_url`; XML attributes: :func:`xml_attr`), and reads fields with
:func:`field_at`, which never fails on a damaged record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape as _xml_escape

from mrv_ml.errors import escape_controls

__all__ = ["deep_link", "field_at", "is_loopback_url", "latex_escape", "latex_url",
           "printable", "xml_attr"]


def field_at(record: Mapping[str, Any], *path: str) -> Any:
    """The value at ``path`` in a record, ``None`` where any step is missing or is not an
    object (records are untrusted: a summary must still print for a damaged one)."""
    node: Any = record
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def printable(text: object) -> str:
    """Record text made safe for a terminal or a text file: C0/C1 control characters
    (ANSI/OSC escape sequences that clear a screen or retitle a window) shown as ``\\xNN``."""
    return escape_controls(str(text))


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters so record text prints literally."""
    replacements = {
        "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
        "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
        "|": r"\textbar{}",
    }
    flat = printable(" ".join(str(text).split()))  # newlines would end the paragraph
    return "".join(replacements.get(ch, ch) for ch in flat)


def latex_url(url: str) -> str:
    r"""A URL inside ``\url{}``: ``%`` and ``#`` escaped (so it survives inside footnotes),
    braces and backslashes percent-encoded (they cannot appear in ``\url`` at all)."""
    url = "".join(quote(ch) if ch in "{}\\" or ch.isspace() else ch for ch in url)
    return url.replace("%", r"\%").replace("#", r"\#")


def deep_link(dashboard_url: str, mrv_id: str, network: str | None = None) -> str:
    """The dashboard's deep link for one record: ``<dashboard>?id=MRV-...&network=...``.
    Existing query parameters of ``dashboard_url`` are kept."""
    parts = urlsplit(dashboard_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in ("id", "network")]
    query.append(("id", mrv_id))
    if network:
        query.append(("network", network))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/",
                       urlencode(query, quote_via=quote), parts.fragment))


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine: true only for its author, never in a paper."""
    import ipaddress

    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def xml_attr(value: str) -> str:
    """A double-quoted, fully escaped XML attribute value."""
    return '"' + _xml_escape(value, {'"': "&quot;", "'": "&apos;"}) + '"'
