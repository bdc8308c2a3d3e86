#!/usr/bin/env bash
# GPU check of the bench harness (see bench/gpu_check.py), then of `benchmark.preload`
# (bench/gpu_preload.py: launch to first sample cold vs forked from a preload server).
# Run from anywhere:
#   bash bench/gpu_check.sh [gpu_check.py options]     (PYTHON=... to pick the interpreter)
# Without options the harness check runs 4 rounds within ~150 s, so both fit in ~5 min.
# Prints Markdown tables for bench/RESULTS.md; raw JSON lines and logs go to $OUT when set.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY="${PYTHON:-python3}"
"$PY" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())' >&2
if [ "$#" -eq 0 ]; then
  set -- --processes 4 --min-processes 4 --budget-s 140
fi
status=0
timeout 330 "$PY" bench/gpu_check.py --python "$PY" "$@" || status=$?
# Standard library only on this side: it drives bisector/preload/_server.py itself.
timeout 150 "$PY" bench/gpu_preload.py --python "$PY" --processes 3 --budget-s 80 || status=$?
exit "$status"
