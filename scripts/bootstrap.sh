#!/usr/bin/env bash
# Installs what mrv-ml needs into ./.venv (and, for tests, node_modules and Chromium).
# Usage: scripts/bootstrap.sh main|test      Idempotent: rerunning installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-main}
PY=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip
# PyTorch first, pinned to the CPU build this machine has on disk: anything installed
# later that wants torch is then satisfied and does not pull a multi-GB CUDA build.
pip install "torch==2.13.0"
if [ "$what" = test ]; then
  pip install -e ".[torch,lightning,huggingface,keras,test]"
  # Node packages: pinned solc, anvil, ethers, OpenZeppelin (contracts + merkle-tree).
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
  # Debian's Chromium for the dashboard's browser tests (Playwright cannot download one here).
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
  fi
  # Debian's PostgreSQL server for the registry's database tests (tests/support/postgres.py
  # runs its own throwaway cluster from these binaries; the packaged service is not used).
  if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
  fi
  # OpenSSL's command line: the tests' RFC 3161 authority (openssl ts -reply) and the
  # independent check of its tokens (openssl ts -verify), tests/support/tsa.py.
  if ! command -v openssl >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
    fi
  fi
  # Debian's SLURM (slurmctld, slurmd, the client commands) and munge: tests/support/slurm.py
  # starts a two-node cluster of its own from these binaries (the packaged services are not
  # used). About 15 s.
  if [ ! -x /usr/sbin/slurmd ] || [ ! -x /usr/sbin/slurmctld ] || [ ! -x /usr/sbin/munged ] \
      || ! command -v srun >/dev/null 2>&1; then
    slurm="slurmctld slurmd slurm-client munge"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $slurm >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $slurm >/dev/null
    fi
  fi
  # pdflatex with booktabs (Debian's texlive-latex-recommended, ~10 MB, about 40 s), so
  # tests/unit/reporting/test_paper.py compiles what `mrv report -f latex` writes.
  if ! command -v pdflatex >/dev/null 2>&1 || ! kpsewhich booktabs.sty >/dev/null 2>&1; then
    tex="texlive-latex-base texlive-latex-recommended"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $tex >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $tex >/dev/null
    fi
  fi
else
  pip install -e ".[torch]"
fi
