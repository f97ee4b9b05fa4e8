"""The one formatter for every figure shown to a person: energy, CO2e, duration, power,
carbon intensity, shares and dates, with SI prefixes and at most three significant digits.

The command line, the reports, the badge and the page all show numbers through this module
or its twin ``dashboard/units.js``; ``data/format_cases.json`` holds the cases both must
reproduce exactly (run by ``tests/unit/base/test_units.py`` in Python and in Chromium). Raw values
stay in ``--json`` output and in the record itself.

Rounding is half away from zero on the exact binary value, which is what JavaScript's
``Number.prototype.toPrecision`` does; Python's own ``format(x, ".3g")`` rounds ties to
even and would disagree with the page on values such as 0.125.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

#: Significant digits of every figure shown (the page's test allows at most four).
SIGNIFICANT_DIGITS = 3
#: Shown for a figure that is missing (not measured, failed, unknown).
MISSING = "—"

# Ladders: (unit, size in the base unit) smallest first, and the unit zero is shown in
# ("0 Wh", not "0 µWh").
_Units = tuple[tuple[str, float], ...]
_ENERGY_KWH: tuple[_Units, str] = ((("µWh", 1e-9), ("mWh", 1e-6), ("Wh", 1e-3), ("kWh", 1.0),
                                    ("MWh", 1e3), ("GWh", 1e6)), "Wh")
_MASS_KG: tuple[_Units, str] = ((("µg", 1e-9), ("mg", 1e-6), ("g", 1e-3), ("kg", 1.0),
                                 ("t", 1e3), ("kt", 1e6)), "g")
_POWER_W: tuple[_Units, str] = ((("mW", 1e-3), ("W", 1.0), ("kW", 1e3), ("MW", 1e6)), "W")
_DURATION_S: tuple[_Units, str] = ((("s", 1.0), ("min", 60.0), ("h", 3600.0)), "s")
#: RFC 3339 with an explicit offset (the same pattern as ``units.js``).
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def finite_number(value: object) -> float | None:
    """``value`` as a float if it is a finite number (not a bool), else ``None``: how every
    figure read from a record (untrusted JSON) becomes a number to show or sum."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _round_sig(x: float, digits: int = SIGNIFICANT_DIGITS) -> Decimal:
    """``x`` (≥ 0) to ``digits`` significant digits, ties away from zero, exactly."""
    d = Decimal(x)
    if d == 0:
        return d
    quantum = Decimal(1).scaleb(d.adjusted() - digits + 1)
    return d.quantize(quantum, rounding=ROUND_HALF_UP)


def _digits(d: Decimal) -> str:
    """A rounded value as plain digits: no exponent, no trailing zeros, thousands
    separated by commas."""
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    whole, dot, frac = text.partition(".")
    return f"{int(whole):,}" + dot + frac


def format_number(value: float | None, digits: int = SIGNIFICANT_DIGITS) -> str:
    """A plain number to ``digits`` significant digits ("475", "0.0523", "1,230"); below
    0.001, "< 0.001"."""
    x = finite_number(value)
    if x is None:
        return MISSING
    sign = "-" if x < 0 else ""
    rounded = _round_sig(abs(x), digits)
    if 0 < rounded < Decimal("0.001"):
        return f"< {sign}0.001"
    return sign + _digits(rounded)


def _scaled(value: float | None, ladder: tuple[_Units, str]) -> str:
    """``value`` in the largest unit of ``ladder`` it reaches at least 1 of."""
    units, zero_unit = ladder
    x = finite_number(value)
    if x is None:
        return MISSING
    sign, x = ("-" if x < 0 else ""), abs(x)
    if x == 0:
        return f"0 {zero_unit}"
    index = 0
    for i, (_, size) in enumerate(units):
        if x / size >= 1:
            index = i
    rounded = _round_sig(x / units[index][1])
    if rounded >= 1000 and index + 1 < len(units):  # 999.7 Wh reads "1 kWh"
        index += 1
        rounded = _round_sig(x / units[index][1])
    if rounded < Decimal("0.001"):  # below a thousandth of the smallest unit
        return f"< {sign}0.001 {units[0][0]}"
    return f"{sign}{_digits(rounded)} {units[index][0]}"


def format_energy_kwh(kwh: float | None) -> str:
    """Energy given in kWh: "30.1 mWh", "4.2 kWh", "1.35 MWh"."""
    return _scaled(kwh, _ENERGY_KWH)


def format_mass_kg(kg: float | None) -> str:
    """A mass given in kg, without naming the gas: "28.6 mg", "1.2 t"."""
    return _scaled(kg, _MASS_KG)


def format_co2_kg(kg: float | None) -> str:
    """Emissions given in kg CO2e: "28.6 mg CO2e"."""
    text = format_mass_kg(kg)
    return text if text == MISSING else f"{text} CO2e"


def format_power_w(watts: float | None) -> str:
    """Power given in W: "41.2 W", "350 mW", "1.2 kW"."""
    return _scaled(watts, _POWER_W)


def format_duration_s(seconds: float | None) -> str:
    """A duration given in seconds: "8.23 s", "12.5 min", "3.42 h", "1,234 h"."""
    return _scaled(seconds, _DURATION_S)


def format_intensity_g_per_kwh(g_per_kwh: float | None) -> str:
    """Carbon intensity given in g CO2e per kWh: "475 g CO2e/kWh"."""
    text = format_number(g_per_kwh)
    return text if text == MISSING else f"{text} g CO2e/kWh"


def format_share(part: float | None, whole: float | None) -> str:
    """``part`` as a percentage of ``whole``: "61.8 %" ("—" when ``whole`` is not > 0)."""
    p, w = finite_number(part), finite_number(whole)
    if p is None or w is None or w <= 0:
        return MISSING
    return f"{format_number(100.0 * p / w)} %"


def format_date(value: str | None) -> str:
    """An RFC 3339 time as its UTC day, "27 Nov 2026" ("—" when unreadable)."""
    moment = utc_moment(value)
    if moment is None:
        return MISSING
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"


def format_datetime(value: str | None) -> str:
    """An RFC 3339 time in UTC to the minute, "27 Nov 2026 14:05 UTC"."""
    moment = utc_moment(value)
    if moment is None:
        return MISSING
    return f"{format_date(value)} {moment.hour:02d}:{moment.minute:02d} UTC"


def utc_moment(value: object) -> datetime | None:
    """An RFC 3339 time (with its offset) as an aware datetime in UTC, else None: a time
    without an offset is no particular moment."""
    if not isinstance(value, str) or _RFC3339.match(value) is None:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value)  # datetime keeps microseconds only
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(timezone.utc)


__all__ = ["MISSING", "SIGNIFICANT_DIGITS", "finite_number", "utc_moment", "format_co2_kg", "format_date", "format_datetime",
           "format_duration_s", "format_energy_kwh", "format_intensity_g_per_kwh",
           "format_mass_kg", "format_number", "format_power_w", "format_share"]
