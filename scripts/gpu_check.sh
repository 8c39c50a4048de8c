#!/usr/bin/env bash
# The run for a lent GPU machine, from a copy of the repository (no venv; pip-installs torch,
# transformers and lightning if $PYTHON lacks them): bench_train_mfu.py, all four modes at
# batch sizes 32..512, into $OUT/bench_gpu.{txt,json,log}.   OUT=/tmp/gpu bash scripts/gpu_check.sh
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

# lightning 2.6 has no dense peaks for "NVIDIA H200" (its "h200 sxm1" figures are with
# sparsity): an H200 SXM gets the datasheet's here
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
