#!/usr/bin/env bash
# The main job: a tracked training run anchored on the embedded local chain, then verified.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh main
export MRV_DATA_DIR=${MRV_DATA_DIR:-mrv_data}
.venv/bin/python examples/train_resnet.py --synthetic --epochs 1 --limit-batches 4 --batch-size 32
record=$(ls -t "$MRV_DATA_DIR"/MRV-*.json | grep -v '\.proof\.json$' | head -n 1)
.venv/bin/mrv verify "$record"
