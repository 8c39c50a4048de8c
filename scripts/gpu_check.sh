#!/usr/bin/env bash
# The one script to run on a lent GPU machine (from a copy of the repo; no venv needed):
# roberta-base training throughput and MFU for fp32, tf32, bf16-mixed and bf16-mixed +
# torch.compile at tweet-length batch sizes 32..512 (see `python3 scripts/bench_train_mfu.py -h`).
# Needs python3 with torch, transformers and lightning (pip-installs those missing); finishes in
# under 7 minutes. With $OUT set it writes $OUT/bench_gpu.txt (table), $OUT/bench_gpu.json (rows,
# rewritten after each mode) and $OUT/bench_gpu.log (progress, one line per finished row).
#   bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

missing=()
for module in torch transformers lightning; do
    "$PY" -c "import $module" 2>/dev/null || missing+=("$module")
done
if ((${#missing[@]})); then
    echo "${missing[*]} missing: trying pip" >&2
    "$PY" -m pip install -q --disable-pip-version-check --retries 0 --timeout 20 \
        "${missing[@]}" || { echo "cannot install ${missing[*]}" >&2; exit 1; }
fi
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv || true

# Peaks: Lightning's get_available_flops, except where its table fails the card. lightning 2.6
# has no entry for the name "NVIDIA H200" (only "h200 sxm1" and "h200 nvl1", and for those the
# with-sparsity tf32/bf16 figures), so an H200 SXM gets its datasheet's dense peaks here.
peaks=()
case "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)" in
    *H200*NVL*) ;;
    *H200*) peaks=(--peak_tflops bf16=989.4 tf32=494.7 fp32=66.9) ;;
esac

out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
timeout 400 "$PY" scripts/bench_train_mfu.py \
    --modes fp32 tf32 bf16-mixed bf16-mixed+compile \
    --batch_size 32 64 128 256 512 --steps 40 --warmup_steps 5 ${peaks[@]+"${peaks[@]}"} \
    --json "$out/bench_gpu.json" 2> >(tee "$out/bench_gpu.log" >&2) | tee "$out/bench_gpu.txt"
echo "results in $out" >&2
