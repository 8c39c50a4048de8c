#!/usr/bin/env bash
# Re-measure the benchmark JSONs of reports/bench/ that the docs render, recording each one's
# command, host, CPU, load at the start and wall time in reports/bench/manifest.json. From the
# repository root in the project's venv:  scripts/bench_docs.sh [NAME...]  (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=offline
BENCH=reports/bench
TINY=${TINY:-/tmp/tweetcls-bench-tiny}

# name -> command (each writes $BENCH/<name>.json through its --json flag)
declare -A COMMANDS=(
  [train_overhead_tiny]="python scripts/bench_train_overhead.py --models tiny --steps 20 --repeats 3 --threads 1 --json $BENCH/train_overhead_tiny.json"
  [train_overhead_minilm]="python scripts/bench_train_overhead.py --models minilm --steps 5 --warmup_steps 2 --repeats 2 --threads 1 --json $BENCH/train_overhead_minilm.json"
  [train_mfu_cpu_tiny]="python scripts/bench_train_mfu.py --device cpu --tiny --steps 2 --no_compile --json $BENCH/train_mfu_cpu_tiny.json"
  [serve_baseline_tiny]="python scripts/bench_serve.py --model $TINY/serving --data $TINY/processed/val.csv --backends onnx-int8 --workers 1 --batching requests --skip_latency --skip_reference --baseline --clients 1 8 32 --duration 5 --json $BENCH/serve_baseline_tiny.json"
)
ORDER=(train_mfu_cpu_tiny train_overhead_tiny train_overhead_minilm serve_baseline_tiny)

# the tiny bundle of the service baseline, outside the working tree: the test suite's recipe
tiny_bundle() {
  [[ -f $TINY/serving/serving.json ]] && return
  python -m tweetcls tiny-model --out "$TINY/model" --train_csv data/raw/train.csv
  local args=(--config configs/tiny.yaml --model.pretrained_model "$TINY/model"
    --data.raw_dir data/raw --data.data_dir "$TINY/processed")
  python -m tweetcls preprocess "${args[@]}" --report_path "$TINY/data.json"
  python -m tweetcls fit "${args[@]}" --config tests/conf/quiet.yaml \
    --config tests/conf/short_fit.yaml --trainer.default_root_dir "$TINY/run"
  python -m tweetcls export --model "$TINY/run/model" --out "$TINY/serving" \
    --data_dir "$TINY/processed" --raw_dir data/raw --report_path "$TINY/export.json" \
    --max_f1_drop 1
}

record() {  # name, command, wall milliseconds, load average at the start -> manifest entry
  python - "$@" <<'EOF'
import json, sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, "scripts")
from _bench_common import host_info

name, command, wall, load = sys.argv[1], sys.argv[2], int(sys.argv[3]) / 1000, sys.argv[4]
path, host = Path("reports/bench/manifest.json"), host_info()
manifest = json.loads(path.read_text()) if path.is_file() else {}
manifest[name] = {
    "file": f"{name}.json",
    "command": command,
    "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    "host": host["host"],
    "cpu": f"{host['cpu_model']} ({' '.join(host['cpu_flags']) or 'no AVX2'}), {host['cpus']} CPUs",
    "wall_s": round(wall, 1),
    "load_average_at_start": [float(x) for x in load.split()],
}
path.write_text(json.dumps(manifest, indent=2) + "\n")  # in the order first run
EOF
}

names=("$@")
[[ ${#names[@]} -eq 0 ]] && names=("${ORDER[@]}")
for name in "${names[@]}"; do
  command=${COMMANDS[$name]:?unknown benchmark $name}
  [[ $name == serve_* ]] && tiny_bundle
  echo "== $name: $command" >&2
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  start=$(date +%s%N)
  # shellcheck disable=SC2086  # the command is a word list; what it prints goes to /tmp
  nice -n 10 $command > "/tmp/tweetcls-bench-$name.out"
  end=$(date +%s%N)
  record "$name" "$command" $(((end - start) / 1000000)) "$load"
done
