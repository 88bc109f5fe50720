#!/usr/bin/env bash
# The GPU acceptance checks of issues 5 (train) and 9 (cuda), in one device
# call (see scripts/gpu/stage.sh for what it needs carried). Every check
# writes its full output to $OUT/<name>.txt and its last lines to
# $OUT/summary.txt; a failing check does not stop the others.
#
#  1. loss match: the first 5 steps of GN2 (fp32, same seed) on the CPU and
#     on CUDA, every task loss within 1e-4 relative;
#  2. throughput: salt-ort bench on CUDA, batch 1000 and 4000, fp32, bf16 and
#     fp16, with and without CUDA graphs, beside gn2_reference.py (eager fp32,
#     bf16 autocast, torch.compile bf16, batch 4000);
#  3. the CPU anchor of issue 5: both at 2 threads, batch 100;
#  4. mixed precision: gn2-small's validation losses after 2 epochs in fp32,
#     bf16 and fp16.
#
# DEVICE=cpu runs the same script on a machine without a GPU with the CUDA
# parts left out (a dry run of its plumbing).
#
# usage: OUT=/tmp/out scripts/gpu/check.sh     (from the repository root)
set -uo pipefail
root=$(pwd)
out=${OUT:-/tmp/device-check}
device=${DEVICE:-cuda}
mkdir -p "$out" .gpu/run
summary=$out/summary.txt
: >"$summary"

if [ -f .gpu/bundle/bundle.tar.gz ]; then
  tar xzf .gpu/bundle/bundle.tar.gz -C .gpu/run
  S=$root/.gpu/run/salt-ort
  ref=$root/.gpu/run/gn2_reference.py
  export LD_LIBRARY_PATH=$root/.gpu/run/lib:/usr/local/cuda/lib64:/usr/lib/x86_64-linux-gnu
  export SALT_ORT_LIB=$root/.gpu/run/lib/libonnxruntime.so
else
  S=$root/bin/salt-ort
  ref=$root/../shared/reference/gn2_reference.py
fi
export SALT_ORT_CUDA_LIB=${SALT_ORT_CUDA_LIB:-/tmp/ort/libonnxruntime_providers_cuda.so}

# check NAME SECONDS COMMAND...: runs a check with a time limit.
check() {
  local name=$1 limit=$2
  shift 2
  echo "== $name: $*" | tee -a "$summary"
  local t0=$SECONDS
  timeout "$limit" "$@" >"$out/$name.txt" 2>&1
  local rc=$?
  echo "rc=$rc, $((SECONDS - t0)) s" >>"$out/$name.txt"
  grep -E 'RESULT|jets/s|^ *GN2 |PASS|FAIL|rc=|rror' "$out/$name.txt" | tail -n 14 | tee -a "$summary"
}

# config FILE FROM EDITS...: a copy of an example with sed edits, beside it
# so that its relative data paths still hold.
config() {
  local file=$1 from=$2
  shift 2
  cp "examples/$from" "examples/$file"
  for e in "$@"; do sed -i "$e" "examples/$file"; done
}

[ "$device" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$summary"
"$S" version | tee -a "$summary"
check gen-data 120 "$S" gen-data --out data/demo --train 30000 --val 5000 --test 2000

# 1. Loss match, CPU against CUDA. A real GN2 run's first steps are in the
# warm-up, at learning rates from 1e-7; max = 1e-5 keeps these 5 steps there.
for d in cpu $device; do
  config "check-$d.toml" gn2.toml 's/^batch_size = .*/batch_size = 100/' 's/^num_train = .*/num_train = 500/' \
    's/^num_val = .*/num_val = 200/' 's/^epochs = .*/epochs = 1/' "s/^device = .*/device = \"$d\"/" \
    's/^precision = .*/precision = "fp32"\nlog_every = 1/' 's/^max = .*/max = 1e-5/'
  rm -rf "runs/check-$d"
  check "loss-$d" 300 "$S" train "examples/check-$d.toml" --out "runs/check-$d" --quiet
done
if [ "$device" = cuda ]; then
  check loss-match 30 python3 - runs/check-cpu/metrics/train.csv runs/check-cuda/metrics/train.csv <<'PY'
import csv, sys
rows = [list(csv.DictReader(open(p))) for p in sys.argv[1:3]]
worst = 0.0
for i, (a, b) in enumerate(zip(*rows)):
    for k in a:
        if k == "loss" or k.startswith("loss/"):
            x, y = float(a[k]), float(b[k])
            rel = abs(x - y) / max(abs(x), 1e-30)
            worst = max(worst, rel)
            print(f"step {i+1} {k}: cpu {x:.8g} cuda {y:.8g} rel {rel:.2e}")
print(("PASS" if worst < 1e-4 and len(rows[0]) >= 5 else "FAIL") + f": worst relative difference {worst:.2e} over {len(rows[0])} steps (limit 1e-4)")
PY
fi

# 2. Throughput on the GPU, salt-ort and the reference side by side.
if [ "$device" = cuda ]; then
  for p in fp32 bf16 fp16; do
    check "bench-$p" 300 "$S" bench --device cuda --precision "$p" --batch 1000 --batch 4000 --steps 50 --warmup 5
  done
  check bench-fp32-no-graph 200 "$S" bench --device cuda --precision fp32 --batch 1000 --mode train --steps 50 --warmup 5 --no-cuda-graph
  check ref-fp32 200 python3 "$ref" --device cuda --batch 1000
  check ref-bf16 200 python3 "$ref" --device cuda --batch 1000 --amp
  check ref-compile-bf16 400 python3 "$ref" --device cuda --batch 1000 --amp --compile
  check ref-fp32-4000 200 python3 "$ref" --device cuda --batch 4000
  check ref-bf16-4000 200 python3 "$ref" --device cuda --batch 4000 --amp
fi

# 3. The CPU anchor of issue 5: the same thread count on the same machine.
check cpu-salt-ort 300 "$S" bench --device cpu --threads 2 --batch 100 --mode train --steps 5 --warmup 1
check cpu-ref 300 python3 "$ref" --device cpu --threads 2 --batch 100 --steps 5

# 4. Mixed precision against fp32 on the demo model.
if [ "$device" = cuda ]; then
  for p in fp32 bf16 fp16; do
    config "mixed-$p.toml" gn2-small.toml 's/^epochs = .*/epochs = 2/' 's/^\[training\]/[training]\ndevice = "cuda"\nprecision = "'"$p"'"/'
    rm -rf "runs/mixed-$p"
    check "mixed-$p" 300 "$S" train "examples/mixed-$p.toml" --out "runs/mixed-$p" --quiet
    cp "runs/mixed-$p/metrics/val.csv" "$out/val-$p.csv" 2>/dev/null
  done
fi
rm -f examples/check-*.toml examples/mixed-*.toml
echo "== done" | tee -a "$summary"
