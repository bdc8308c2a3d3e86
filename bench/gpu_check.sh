#!/usr/bin/env bash
# GPU check of the bench harness (see bench/gpu_check.py). Run from anywhere:
#   bash bench/gpu_check.sh [--processes 5]      (PYTHON=... to pick the interpreter)
# Prints a Markdown table for bench/RESULTS.md; raw JSON lines and logs go to $OUT when set.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY="${PYTHON:-python3}"
"$PY" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())' >&2
exec timeout 330 "$PY" bench/gpu_check.py --python "$PY" "$@"
