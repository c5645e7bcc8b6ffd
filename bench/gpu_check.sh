#!/usr/bin/env bash
# The device check: what a GPU run gives, in one short script (at most ~8 minutes on one GPU).
#
#   bench/gpu_check.sh [--cpu] [--no-bench] [--workdir /tmp/sigeo-gpu-check]
#
# 1. The tiny test config (tests/conftest.py tiny_config, with devices.deterministic: true) through the
#    whole default DAG twice from scratch, each in its own folder: wall time, which device the GPU
#    rules ran on (their logs), and table by table whether the two runs are byte-identical
#    (search_results without its measured cost columns, as tests/test_dag.py compares them).
# 2. bench/search.py on the device in a quick mode (SiGeo and one-shot per candidate at the paper's
#    Criteo table sizes, 3 candidates).
# 3. bench/train.py in its quick mode (--steps 3).
# Every line of output starts with the device's name. Each step has its own time limit (150 s per
# DAG run, 75 s and 90 s for the benchmarks: 7.75 min in all); one that runs over or fails is
# reported and the script goes on. --cpu hides the GPUs (a smoke run of the script itself), with
# LIMIT_SCALE=N the limits are N times longer, --no-bench skips 2 and 3. The Python that runs
# everything is $PYTHON (default: python), with the project and its test extras installed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=/tmp/sigeo-gpu-check
ON_CPU=0
BENCH=1
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) ON_CPU=1 ;;
    --no-bench) BENCH=0 ;;
    --workdir) WORK=$2; shift ;;
    *) echo "usage: $0 [--cpu] [--no-bench] [--workdir DIR]" >&2; exit 2 ;;
  esac
  shift
done
WORK=$(realpath -m "$WORK")  # the config's lock folder inside it must be absolute
PY=${PYTHON:-python}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
[ "$ON_CPU" = 1 ] && export CUDA_VISIBLE_DEVICES=""
mkdir -p "$WORK"
cd "$ROOT" || exit 1

# The device: its name heads every line; the torch device the benches use.
read -r DEVICE GPUS < <("$PY" -c 'import torch; n = torch.cuda.device_count() if torch.cuda.is_available() else 0; print("cuda" if n else "cpu", n)')
LABEL=$("$PY" -c "
import os, torch
if '$DEVICE' == 'cuda':
    print(f'{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}')
else:
    print(f'CPU ({os.cpu_count()} cores), torch {torch.__version__}')
")
tag() { LABEL="$LABEL" awk '{ print "[" ENVIRON["LABEL"] "] " $0; fflush() }'; }
say() { printf '%s\n' "$*" | tag; }
if [ "$DEVICE" = cuda ] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader | sed 's/^/nvidia-smi: /' | tag
fi
say "device check on $DEVICE ($GPUS GPU(s) visible), $(nproc) cores, workdir $WORK"

# step LIMIT_S NAME COMMAND...: run with a time limit, output tagged; report its time or why it stopped.
step() {
  local limit=$(($1 * ${LIMIT_SCALE:-1})) name=$2 start=$EPOCHREALTIME rc seconds
  shift 2
  timeout "$limit" "$@" 2>&1 | tag
  rc=${PIPESTATUS[0]}
  seconds=$(awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1f", e - s }')
  case $rc in
    0) say "$name: done in ${seconds} s" ;;
    124) say "$name: STOPPED at its limit of ${limit} s" ;;
    *) say "$name: FAILED (exit status $rc) after ${seconds} s" ;;
  esac
  return "$rc"
}

# 1. The tiny DAG twice.
"$PY" - "$WORK" <<'EOF' || exit 1
"""Write the tiny config (deterministic kernels) and its MNIST stand-in into two fresh run folders."""
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, "tests")
from conftest import ROOT, tiny_config, write_config, write_tiny_mnist

for run in ("a", "b"):
    folder = Path(sys.argv[1]) / run
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    write_tiny_mnist(folder / "mnist", np.random.default_rng(0))
    config = tiny_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    config["theory"]["mnist_dir"] = str(folder / "mnist")
    config["devices"] = {**config.get("devices", {}), "deterministic": True, "lock_dir": str(folder / "locks")}
    write_config(folder, config)
EOF
for run in a b; do
  # Snakemake's own output goes to $WORK/$run.log; its last lines are shown when the run fails or stops.
  step 150 "tiny DAG, run $run" sh -c 'exec "$@" >"$0" 2>&1' "$WORK/$run.log" \
    "$PY" -m snakemake -s "$ROOT/Snakefile" -d "$WORK/$run" --cores "$(nproc)" --resources gpu="$((GPUS > 0 ? GPUS : 1))" \
    || tail -n 12 "$WORK/$run.log" | tag
  gpu_logs=$(grep -l "took GPU\|given GPU" -r "$WORK/$run/logs" 2>/dev/null | wc -l)
  cpu_logs=$(grep -l "no GPU visible; running on CPU" -r "$WORK/$run/logs" 2>/dev/null | wc -l)
  say "tiny DAG, run $run: $gpu_logs job logs on a GPU, $cpu_logs on the CPU"
  grep -h "failed on\|ERROR" -r "$WORK/$run/logs" 2>/dev/null | head -5 | tag
done
"$PY" - "$WORK/a" "$WORK/b" <<'EOF' 2>&1 | tag
"""Table by table: byte-identical across the two runs? (search_results* without the measured costs.)"""
import sys
from pathlib import Path

import pandas as pd

a, b = (Path(p) for p in sys.argv[1:])
COSTS = ["warmup_s", "search_s", "train_s", "cost"]
names = sorted({p.relative_to(a) for p in (a / "results/tables").glob("*")} | {p.relative_to(b) for p in (b / "results/tables").glob("*")})
names += [Path("results/search/tiny/small/w0.5/sigeo/records.csv")]
same, differ = [], []
for name in names:
    if not (a / name).exists() or not (b / name).exists():
        differ.append(f"{name} (missing in run {'a' if not (a / name).exists() else 'b'})")
    elif name.name == "search_results.csv":
        frames = [pd.read_csv(d / name).drop(columns=COSTS) for d in (a, b)]
        (same if frames[0].equals(frames[1]) else differ).append(str(name))
    elif name.name.startswith("search_results") or name.name == "search_summary.md":
        continue  # carry the measured costs; search_results.csv is compared without them
    else:
        (same if (a / name).read_bytes() == (b / name).read_bytes() else differ).append(str(name))
print(f"tables of the two runs: {len(same)} of {len(same) + len(differ)} identical (deterministic kernels)")
for name in differ:
    print(f"  differs: {name}")
EOF

# 2. and 3. The benchmarks' quick modes.
if [ "$BENCH" = 1 ]; then
  step 75 "bench/search.py" "$PY" bench/search.py --device "$DEVICE" --only sigeo --candidates 3 --paper-oneshot 0 \
    --workdir "$WORK/bench"
  step 90 "bench/train.py" "$PY" bench/train.py --steps 3 --workdir "$WORK/bench"
fi
say "device check finished"
