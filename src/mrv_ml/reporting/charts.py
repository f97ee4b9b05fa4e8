"""Charts as inline SVG, drawn by Python for reports that must read without scripts (the
HTML report attached to papers and mails, printed). The page draws its own in JavaScript.

Geometry, kept simple so it can be checked by eye and by tests:

- The power chart is a box of ``width`` × ``height`` px; the plot area is inset by
  :data:`MARGIN` (left, right, top, bottom). x is seconds since the run's start, from 0 to
  the end of the last interval; y is watts, from 0 to the largest stacked power (CPU + GPU
  + RAM of one interval), rounded up to a "nice" 1, 2 or 5 × 10^k.
- Each interval is a step: its mean power is flat from ``start_offset_s`` to
  ``start_offset_s + duration_s``. Each component is one ``<polygon>`` stacked on the ones
  below it (CPU at the bottom, then GPU, then RAM): its top edge has two vertices per
  interval (start and end), its bottom edge (the top of the component below) the same two
  per interval in reverse, so a polygon has ``4 × n`` vertices for ``n`` intervals.
- Extrapolated intervals (``measured: false``) are each covered by a translucent grey
  ``<rect>`` the plot's full height, drawn over the areas; the legend says what grey means.

Only presentation attributes, no ``style`` attributes or scripts: the SVG is valid under a
strict Content-Security-Policy and in any mail client. Every label is XML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from mrv_ml.errors import MRVValueError
from mrv_ml.units import (
    finite_number,
    format_duration_s,
    format_energy_kwh,
    format_power_w,
    format_share,
)

__all__ = ["COLORS", "MARGIN", "PowerPoint", "energy_split_svg", "power_chart_svg",
           "power_points"]

#: Component colours (the page uses the same).
COLORS = {"cpu": "#1565c0", "gpu": "#2e7d32", "ram": "#f9a825"}
EXTRAPOLATED_FILL = "#9e9e9e"
#: Plot area inset in px: left (y labels), right, top, bottom (x labels and legend).
MARGIN = (64, 12, 10, 46)
_COMPONENTS = ("cpu", "gpu", "ram")


@dataclass(frozen=True)
class PowerPoint:
    """One interval of a power series: seconds since start, length, mean watts."""

    start_s: float
    duration_s: float
    power_w: dict[str, float]
    measured: bool


def power_points(series: Any) -> list[PowerPoint]:
    """The intervals of a record's ``power_series``; ``ValueError`` when the series is
    not the parallel arrays the schema describes (a damaged or hand-edited record)."""
    if not isinstance(series, Mapping):
        raise MRVValueError("the power series is not an object")
    keys = ("start_offset_s", "duration_s", "cpu_power_w", "gpu_power_w", "ram_power_w",
            "measured")
    columns: list[Any] = [series.get(k) for k in keys]
    if not all(isinstance(c, list) for c in columns):
        raise MRVValueError("the power series lacks one of its arrays")
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise MRVValueError("the power series' arrays differ in length")
    points = []
    for i in range(n):
        start, length = finite_number(columns[0][i]), finite_number(columns[1][i])
        powers = [finite_number(columns[j][i]) for j in (2, 3, 4)]
        if start is None or length is None or length < 0 or any(
                p is None or p < 0 for p in powers) or not isinstance(columns[5][i], bool):
            raise MRVValueError(f"the power series' interval {i} is not numbers")
        points.append(PowerPoint(start, length,
                                 {c: float(p or 0.0) for c, p in zip(_COMPONENTS, powers, strict=True)},
                                 columns[5][i]))
    return points


def _nice_ceiling(x: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at least ``x`` (1 for nothing to show)."""
    if x <= 0:
        return 1.0
    base = 10.0 ** math.floor(math.log10(x))
    for step in (1, 2, 5, 10):
        if step * base >= x * (1 - 1e-12):
            return float(step * base)
    return 10.0 * base


def _f(x: float) -> str:
    return f"{x:.1f}"


def power_chart_svg(points: Sequence[PowerPoint], *, width: int = 640, height: int = 240,
                    title: str = "Power over time") -> str:
    """Stacked CPU/GPU/RAM power (W, before PUE) against time since the start."""
    left, right, top, bottom = MARGIN
    pw, ph = width - left - right, height - top - bottom
    end_s = max((p.start_s + p.duration_s for p in points), default=0.0) or 1.0
    peak = max((sum(p.power_w.values()) for p in points), default=0.0)
    y_max = _nice_ceiling(peak)

    def x(seconds: float) -> float:
        return left + pw * seconds / end_s

    def y(watts: float) -> float:
        return top + ph * (1 - watts / y_max)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="power-chart" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title, {chr(34): "&quot;"})}">',
           f"<title>{escape(title)}</title>",
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" '
           'stroke="#bdbdbd"/>']
    below = [0.0] * len(points)
    for c in _COMPONENTS:
        above = [b + p.power_w[c] for b, p in zip(below, points, strict=True)]
        top_edge = [(x(px), y(a)) for p, a in zip(points, above, strict=True)
                    for px in (p.start_s, p.start_s + p.duration_s)]
        bottom_edge = [(x(px), y(b)) for p, b in zip(points, below, strict=True)
                       for px in (p.start_s, p.start_s + p.duration_s)][::-1]
        vertices = " ".join(f"{_f(vx)},{_f(vy)}" for vx, vy in top_edge + bottom_edge)
        out.append(f'<polygon class="area-{c}" points="{vertices}" fill="{COLORS[c]}" '
                   'fill-opacity="0.85"/>')
        below = above
    for p in points:  # over the areas: an extrapolated interval reads greyed out
        if not p.measured:
            out.append(f'<rect class="extrapolated" x="{_f(x(p.start_s))}" y="{top}" '
                       f'width="{_f(x(p.start_s + p.duration_s) - x(p.start_s))}" '
                       f'height="{ph}" fill="{EXTRAPOLATED_FILL}" fill-opacity="0.45"/>')
    # Axes: three ticks each, labelled by the one formatter.
    for frac in (0.0, 0.5, 1.0):
        ty = y(y_max * frac)
        out.append(f'<line x1="{left - 4}" y1="{_f(ty)}" x2="{left}" y2="{_f(ty)}" '
                   'stroke="#616161"/>')
        out.append(f'<text x="{left - 6}" y="{_f(ty + 4)}" text-anchor="end" font-size="11" '
                   f'fill="#424242">{escape(format_power_w(y_max * frac))}</text>')
        tx = left + pw * frac
        anchor = ("start", "middle", "end")[int(frac * 2)]
        out.append(f'<text x="{_f(tx)}" y="{top + ph + 14}" text-anchor="{anchor}" '
                   f'font-size="11" fill="#424242">{escape(format_duration_s(end_s * frac))}'
                   "</text>")
    legend_y = height - 10
    lx = left
    for label, color, opacity in (("CPU", COLORS["cpu"], "0.85"), ("GPU", COLORS["gpu"], "0.85"),
                                  ("RAM", COLORS["ram"], "0.85"),
                                  ("extrapolated (not measured)", EXTRAPOLATED_FILL, "0.45")):
        out.append(f'<rect x="{lx}" y="{legend_y - 9}" width="10" height="10" fill="{color}" '
                   f'fill-opacity="{opacity}"/>')
        out.append(f'<text x="{lx + 14}" y="{legend_y}" font-size="11" fill="#424242">'
                   f"{escape(label)}</text>")
        lx += 14 + 7 * len(label) + 14
    out.append(f'<text x="{width - right}" y="{legend_y}" text-anchor="end" font-size="11" '
               'fill="#757575">time since start · power before PUE</text>')
    out.append("</svg>")
    return "".join(out)


def energy_split_svg(component_kwh: Mapping[str, float | None], *, width: int = 640,
                     height: int = 34) -> str | None:
    """One horizontal bar split by each component's share of the energy (CPU, GPU, RAM,
    widths proportional to kWh), labelled below; ``None`` when there is nothing to split."""
    parts = {c: finite_number(component_kwh.get(c)) for c in _COMPONENTS}
    whole = sum(v for v in parts.values() if v is not None and v > 0)
    if whole <= 0:
        return None
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="energy-split" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="Energy by component">', "<title>Energy by component</title>"]
    bar_x = 0.0
    label_x = 0
    for c in _COMPONENTS:
        kwh = parts[c]
        if kwh is None or kwh <= 0:
            continue
        w = width * kwh / whole
        out.append(f'<rect class="split-{c}" x="{_f(bar_x)}" y="0" width="{_f(w)}" height="14" '
                   f'fill="{COLORS[c]}"/>')
        bar_x += w
        label = f"{c.upper()} {format_energy_kwh(kwh)} ({format_share(kwh, whole)})"
        out.append(f'<rect x="{label_x}" y="{height - 11}" width="10" height="10" '
                   f'fill="{COLORS[c]}"/><text x="{label_x + 14}" y="{height - 2}" '
                   f'font-size="11" fill="#424242">{escape(label)}</text>')
        label_x += 14 + 7 * len(label) + 16
    out.append("</svg>")
    return "".join(out)
