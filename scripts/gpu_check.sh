#!/usr/bin/env bash
# The one script to run on a lent GPU machine (from a copy of the repo; no venv needed):
# roberta-base training throughput and MFU for fp32, tf32, bf16-mixed and bf16-mixed +
# torch.compile at tweet-length batch sizes 32..512 (see `python3 scripts/bench_train_mfu.py -h`).
# Needs python3 with torch + transformers; finishes in under 6 minutes. With $OUT set it writes
# $OUT/bench_gpu.md (table), $OUT/bench_gpu.json (rows, rewritten after each mode) and
# $OUT/bench_gpu.log (progress, one line per finished row).
#   bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

if ! "$PY" -c "import torch, transformers" 2>/dev/null; then
    echo "torch/transformers missing: trying pip" >&2
    "$PY" -m pip install -q --disable-pip-version-check --retries 0 --timeout 20 \
        torch transformers || { echo "cannot install torch + transformers" >&2; exit 1; }
fi
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv || true

out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
timeout 330 "$PY" scripts/bench_train_mfu.py \
    --modes fp32 tf32 bf16-mixed bf16-mixed+compile \
    --batch_size 32 64 128 256 512 --steps 40 --warmup_steps 5 \
    --json "$out/bench_gpu.json" 2> >(tee "$out/bench_gpu.log" >&2) | tee "$out/bench_gpu.md"
echo "results in $out" >&2
