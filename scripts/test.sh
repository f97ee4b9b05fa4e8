#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
.venv/bin/ruff check src tests benchmarks examples scripts
.venv/bin/mypy
# Two workers (the CI machine has two cores): each starts its own anvil, PostgreSQL and
# Chromium; the suite takes about two thirds of the time it takes in one process.
.venv/bin/python -m pytest -n 2 "$@"
