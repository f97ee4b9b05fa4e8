#!/usr/bin/env python3
"""Regenerate ``src/mrv_ml/data/hash_vectors.json``: RFC 8785 + SHA-256 test vectors.

Each vector is ``{"name", "value", "canonical", "sha256"}``: ``value`` is any JSON
value, ``canonical`` its RFC 8785 (JCS) form as a string, ``sha256`` the hex digest of
the canonical UTF-8 bytes. Python (tests/unit/record/test_hashing.py) and the browser dashboard
both check their canonicalization against this one file, so its format must not change.

Usage:  python scripts/make_hash_vectors.py [--check]
  --check  exit 1 if the committed file differs from what would be generated.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import rfc8785
from _generated import write_or_check

OUT = Path(__file__).resolve().parent.parent / "src" / "mrv_ml" / "data" / "hash_vectors.json"

# A complete, schema-valid record with a fixed ID, floats that stress number
# formatting, and non-ASCII text: the case the dashboard must get right.
REALISTIC_RECORD: dict[str, Any] = {
    "schema_version": "1.0",
    "mrv_id": "MRV-fc25ba52-f439-4834-be2b-2dbae1e03437",
    "experiment": {
        "name": "résumé-bert-finetune",
        "model_name": "bert-base-uncased",
        "dataset_name": "IMDb",
        "framework": "pytorch",
        "description": "Fine-tuning on 日本語 and emoji 🌱 text; \"quoted\" </script>",
        "tags": {"team": "green-ai", "Ω": "ohm"},
    },
    "training": {"epochs": 3, "batch_size": 32, "command": ["python", "train.py", "--lr", "3e-5"],
                 "details": {"learning_rate": 3e-05, "warmup_ratio": 0.1, "seed": 42}},
    "outcome": {"status": "completed", "error_type": None, "error_message": None,
                "exit_code": 0},
    "hardware": {"cpu_model": "AMD EPYC 7B13", "cpu_physical_cores": 8, "cpu_logical_cores": 16,
                 "ram_gb": 62.8, "gpu_count": 1,
                 "gpus": [{"index": 0, "name": "NVIDIA A100-SXM4-40GB", "memory_gb": 40.0}],
                 "os": "Linux-6.1.0-x86_64-with-glibc2.36", "machine": "x86_64"},
    "energy_emissions": {
        "measurement_tool": "CodeCarbon", "measurement_tool_version": "3.3.2",
        "measurement_status": "measured", "measurement_error": None,
        "energy_kwh": 0.8712345678901234, "cpu_energy_kwh": 0.1,
        "gpu_energy_kwh": 0.7000000000000001, "ram_energy_kwh": 0.0712345678901234,
        "co2_kg": 0.42, "duration_seconds": 3600.5,
        "carbon_intensity_g_per_kwh": 482.0, "pue": 1.58,
        "country_iso_code": "DEU", "region": None, "location_source": "configured",
        "methods": {"cpu": {"method": "RAPL", "measured": True},
                    "gpu": {"method": "NVML", "measured": True},
                    "ram": {"method": "RAM power estimate", "measured": False}},
        "intervals": [{"start_offset_s": 0.0, "end_offset_s": 3600.5, "method": "RAPL"}],
    },
    "software": {"python": "3.11.7", "mrv_ml": "0.1.0", "codecarbon": "3.3.2",
                 "frameworks": {"torch": "2.13.0", "transformers": "4.46.0"},
                 "os": "Linux-6.1.0-x86_64-with-glibc2.36"},
    "source": {"git_commit": "3f786850e387550fdab836ed7e6dc881de23001b", "git_dirty": False},
    "distributed": None,
    "timestamps": {"start_time": "2026-11-24T21:00:00.000000Z",
                   "end_time": "2026-11-24T22:00:00.500000Z"},
}

VECTORS: list[tuple[str, Any]] = [
    ("number 1e-7 (exponent form below 1e-6)", 1e-7),
    ("number 0.1+0.2 (shortest round-trip)", 0.1 + 0.2),
    ("number 1e21 (first exponent form)", 1e21),
    ("number 1e20 (last plain integer form)", 1e20),
    ("number 1e-6 (last plain fraction form)", 1e-6),
    ("number -0.0 (serialized as 0)", -0.0),
    ("number 5e-324 (smallest subnormal)", 5e-324),
    ("number 1.7976931348623157e308 (largest double)", 1.7976931348623157e308),
    ("integer 2**53-1", 2**53 - 1),
    ("integer -(2**53-1)", -(2**53 - 1)),
    ("number 4.50 and 1E30 and 2e-3 (RFC 8785 example numbers)", [4.5, 1e30, 2e-3, 1e-27]),
    ("non-ASCII text: é, 日本語, emoji, combining characters",
     {"latin": "é", "cjk": "日本語", "emoji": "🌱😀", "combining": "e\u0301 n\u0303",
      "nfc_vs_nfd": ["\u00e9", "e\u0301"]}),
    ("control characters and escapes",
     {"nul": "\u0000", "unit_separator": "\u001f", "quote": '"', "backslash": "\\",
      "script": "</script>", "solidus": "/", "whitespace": "\b\t\n\f\r", "del": "\u007f",
      "line_separator": "\u2028"}),
    ("key order by UTF-16 code units",
     {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\U0001f600": "Emoji: Grinning Face",
      "1": "One", "a": "lower a", "A": "upper A", "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "\u0080": "Control", "\u00f6": "o with diaeresis"}),
    ("nested objects and arrays",
     {"b": [3, {"z": None, "y": [True, False]}, []], "a": {"c": {"d": {"e": 1.5}}},
      "empty_string": ""}),
    ("empty object", {}),
    ("empty array", []),
    ("literals", [None, True, False]),
    ("full realistic MRV record", REALISTIC_RECORD),
]


def build() -> list[dict[str, Any]]:
    vectors = []
    for name, value in VECTORS:
        canonical = rfc8785.dumps(value)
        vectors.append({
            "name": name,
            "value": value,
            "canonical": canonical.decode("utf-8"),
            "sha256": hashlib.sha256(canonical).hexdigest(),
        })
    return vectors


def render(vectors: list[dict[str, Any]]) -> bytes:
    # ensure_ascii: every non-ASCII character is a \\u escape in the file, so the file is
    # immune to editors and the JSON parser (not the file encoding) defines the values.
    return (json.dumps(vectors, indent=2, ensure_ascii=True, allow_nan=False) + "\n").encode()


def main(argv: list[str]) -> int:
    return write_or_check(OUT, render(build()), argv, "scripts/make_hash_vectors.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
