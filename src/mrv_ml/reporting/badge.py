"""The record's badge: its state in one word (``verified`` only for a VALID verdict, and
only "verified" for what anyone can check), and a flat two-part SVG that links to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape as _xml_escape

from mrv_ml.record.proof import Proof, proof_matches
from mrv_ml.record.trust import Trust, proof_trust
from mrv_ml.reporting.text import field_at, xml_attr
from mrv_ml.units import finite_number, format_mass_kg
from mrv_ml.verification.model import Verdict
from mrv_ml.verification.verdict import VerdictStatus

__all__ = ["BADGE_COLORS", "badge_status", "badge_svg"]

# Badge states, in the colours readers know from CI badges.
BADGE_COLORS = {
    "verified": "#2e7d32",
    "anchored": "#1565c0",
    "pending": "#9e9e9e",
    "unverified": "#9e9e9e",
    "modified": "#c62828",
    "tampered": "#c62828",
    "not found": "#c62828",
    "local only": "#9e9e9e",
    "verified (private)": "#6d8b74",
    "anchored (private)": "#6d8b74",
    "submitter mismatch": "#c62828",
}

# "verified" only for what anyone can check; the author's own chain says so plainly.
_VALID_BADGE = {Trust.PUBLIC: "verified", Trust.PRIVATE: "verified (private)",
                Trust.LOCAL: "local only"}
_ANCHORED_BADGE = {Trust.PUBLIC: "anchored", Trust.PRIVATE: "anchored (private)",
                   Trust.LOCAL: "local only"}
_VERDICT_BADGE = {
    VerdictStatus.VALID: "verified",
    VerdictStatus.TAMPERED: "tampered",
    VerdictStatus.NOT_FOUND: "not found",
    VerdictStatus.SUBMITTER_MISMATCH: "submitter mismatch",
}


def badge_status(record: Mapping[str, Any], proof: Proof | None = None,
                 verdict: Verdict | None = None, digest: str | None = None) -> str:
    """``verified`` only for a VALID verdict; else what the verdict or sidecar supports."""
    if verdict is not None:
        if verdict.status is VerdictStatus.VALID:
            return _VALID_BADGE[Trust(verdict.trust)]
        return _VERDICT_BADGE[verdict.status]
    if proof is None:
        return "unverified"
    if not proof_matches(record, proof, digest):
        return "modified"
    trust = proof_trust(proof)
    return "pending" if trust is None else _ANCHORED_BADGE[trust]


def _text_width_px(text: str) -> int:
    """Rough width of 11 px Verdana text (the badge font), wide enough for any glyph."""
    return int(sum(7.2 if ch.isupper() or ord(ch) > 127 else 6.2 for ch in text)) + 10


def badge_svg(record: Mapping[str, Any], *, status: str, link: str | None = None) -> str:
    """A flat two-part badge: "CO2e" | "420 g · <status>", linked to ``link``."""
    co2 = format_mass_kg(finite_number(field_at(record, "energy_emissions", "co2_kg")))
    label, message = "CO2e", f"{co2} · {status}"
    title = f"{label}: {message}"
    color = BADGE_COLORS.get(status, "#9e9e9e")
    lw, mw = _text_width_px(label), _text_width_px(message)
    width = lw + mw
    body = (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{width}" height="20" role="img" aria-label={xml_attr(title)}>'
        f"<title>{_xml_escape(title)}</title>"
        f'<rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{mw}" height="20" fill="{color}"/>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" '
        f'font-size="11">'
        f'<text x="{lw / 2:.1f}" y="14">{_xml_escape(label)}</text>'
        f'<text x="{lw + mw / 2:.1f}" y="14">{_xml_escape(message)}</text>'
        f"</g></svg>"
    )
    if link:
        inner = body[body.index(">") + 1:-len("</svg>")]
        head = body[:body.index(">") + 1]
        body = f"{head}<a href={xml_attr(link)} xlink:href={xml_attr(link)}>{inner}</a></svg>"
    return body + "\n"
