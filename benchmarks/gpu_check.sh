#!/usr/bin/env bash
# GPU check: the end-to-end path (pretrain → finetune → evaluate → predict) on CUDA and on the CPU with
# the same settings; prints training samples/s and the ratio CUDA / CPU (benchmarks/gpu_check.py).
# Needs a machine with an NVIDIA GPU and a CUDA build of torch; CI never runs it. Exits 3 with a
# message when no GPU is visible. Usage: bash benchmarks/gpu_check.sh [--epochs 5] [--json]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"; then
    version=$("$PY" -c "import torch; print(torch.__version__, '(CUDA build:', str(torch.version.cuda) + ')')")
    echo "gpu_check: no CUDA GPU is visible to torch $version; run this on a machine with an NVIDIA GPU and a CUDA build of torch (nothing was run)" >&2
    exit 3
fi
exec "$PY" benchmarks/gpu_check.py "$@"
