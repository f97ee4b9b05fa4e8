#!/usr/bin/env python3
"""Regenerate ``src/mrv_ml/data/format_cases.json``: the figures both formatters must show.

Each case is ``{"fn", "args", "expected"}``: ``fn`` names a function of ``mrv_ml.units``
(``dashboard/units.js`` exports the same names in ``FORMATTERS``), ``args`` its arguments as
JSON, ``expected`` what Python shows. ``tests/unit/base/test_units.py`` runs every case through both;
the hand-checked cases there pin what Python shows in the first place.

Usage:  python scripts/make_format_cases.py [--check]
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from _generated import write_or_check

from mrv_ml import units

OUT = Path(__file__).resolve().parent.parent / "src" / "mrv_ml" / "data" / "format_cases.json"

SCALED = ("format_energy_kwh", "format_mass_kg", "format_co2_kg", "format_power_w",
          "format_duration_s", "format_number", "format_intensity_g_per_kwh")
# Edges: zero, unit boundaries and what rounds across them, ties (0.125, 2.675), the
# floor, negatives, values that are not numbers.
EDGES: list[Any] = [0, 0.0, 1, 1e-15, 1e-12, 9.99e-10, 1e-9, 9.995e-7, 9.9949e-7, 1e-6,
                    3.013976150766977e-05, 0.125, 0.0125, 2.675, 999.5, 999.4999, 1000,
                    59.99, 60, 3599.5, 3600, 1234567.0, 123456789012.0, 4.2, -2.5e-3,
                    -0.125, 1.5e300, 5e-324, True, None, "1.0"]
DATES = ["2026-11-27T10:00:00Z", "2026-11-27T23:59:59.999999999+02:00",
         "2026-01-01T00:30:00-01:00", "2026-11-27T10:00Z", "2026-11-27", "27 Nov 2026",
         "2026-11-27T10:00:00", "", None, 5, "2026-12-31T23:59:60Z"]


def cases() -> list[dict[str, Any]]:
    rng = random.Random(13)
    values: list[Any] = list(EDGES)
    for _ in range(150):  # log-uniform over the magnitudes records hold
        values.append(10 ** rng.uniform(-12, 9))
    for _ in range(50):  # short decimals, where ties live
        values.append(round(rng.uniform(0, 2000), rng.randint(0, 4)))
    out = [{"fn": fn, "args": [v]} for fn in SCALED for v in values]
    out += [{"fn": "format_share", "args": a} for a in
            ([1, 3], [0, 5], [5, 0], [2, 2], [1e-9, 3e-9], [None, 1], [1, -1], [0.125, 100])]
    out += [{"fn": fn, "args": [d]} for fn in ("format_date", "format_datetime") for d in DATES]
    for case in out:
        case["expected"] = getattr(units, case["fn"])(*case["args"])
    return out


def main(argv: list[str]) -> int:
    data = json.dumps(cases(), ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
    return write_or_check(OUT, data, argv, "scripts/make_format_cases.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
