#!/usr/bin/env bash
# The GPU acceptance checks of issues 5 (train) and 9 (cuda), in one device
# call (see scripts/gpu/stage.sh for what it needs carried). Each check has
# a pass condition and prints one verdict line (PASS, FAIL or SKIP, the
# name and why) to the terminal and to $OUT/summary.txt, its full output
# going to $OUT/<name>.txt; a failing check does not stop the others, and
# the script exits 1 when any failed.
#
#  1. loss match: the first 5 steps of GN2 (fp32, same seed) on the CPU and
#     on CUDA: every task loss within LOSS_TOL (1e-4) relative, at least 5
#     steps (scripts/gpu/compare.py losses);
#  2. throughput: salt-ort bench on CUDA, batch 1000 and 4000 (fp32 also
#     100, with the memory plan at 4000), fp32, bf16 and fp16, with and
#     without CUDA graphs, beside gn2_reference.py (eager fp32,
#     bf16 autocast, torch.compile bf16, batch 4000): each must run and print
#     its jets/s (the figures are for docs/performance.md, not judged here);
#  3. the CPU anchor of issue 5: both at 2 threads, batch 100, the same;
#  4. mixed precision: gn2-small's validation losses after 2 epochs in bf16
#     and fp16 each within MIXED_TOL (3 %) relative of fp32's, every loss
#     column of the last epoch (scripts/gpu/compare.py val). Mixed
#     precision rounds differently from the first step on, so the runs
#     part like two summation orders; 3 % is a chosen bound, not yet
#     measured on a GPU: the verdict line prints the difference found.
#
# DEVICE=cpu runs the same script on a machine without a GPU (its plumbing;
# cli.TestGPUCheckScriptOnCPU runs it in `make test`): the CUDA checks are
# left out, the loss match compares 2 threads with 1 and the mixed-precision
# check runs fp32 alone. The sizes shrink with
#   MODEL=gn2-small.toml  the example of checks 1 and 3 (default gn2.toml)
#   JETS=1000             training jets gen-data writes (default 30000)
#   MIXED_TRAIN=500       training jets of check 4 (default all)
# SALT_ORT names the binary; REF= (empty) skips the reference script's
# checks, saying so (by default a missing script is a failure).
#
# usage: OUT=/tmp/out scripts/gpu/check.sh     (from the repository root)
set -uo pipefail
root=$(pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${OUT:-/tmp/device-check}
device=${DEVICE:-cuda}
model=${MODEL:-gn2.toml}
jets=${JETS:-30000}
mixed_train=${MIXED_TRAIN:--1}
loss_tol=${LOSS_TOL:-1e-4}
mixed_tol=${MIXED_TOL:-0.03}
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"

if [ -f .gpu/bundle/bundle.tar.gz ]; then
  mkdir -p .gpu/run
  tar xzf .gpu/bundle/bundle.tar.gz -C .gpu/run
  S=$root/.gpu/run/salt-ort
  ref=$root/.gpu/run/gn2_reference.py
  export LD_LIBRARY_PATH=$root/.gpu/run/lib:/usr/local/cuda/lib64:/usr/lib/x86_64-linux-gnu
  export SALT_ORT_LIB=$root/.gpu/run/lib/libonnxruntime.so
else
  S=$root/bin/salt-ort
  ref=$root/../shared/reference/gn2_reference.py
fi
S=${SALT_ORT:-$S}
ref=${REF-$ref}
export SALT_ORT_CUDA_LIB=${SALT_ORT_CUDA_LIB:-/tmp/ort/libonnxruntime_providers_cuda.so}

failed=()

# verdict STATUS NAME DETAIL: the one line a check ends with.
verdict() {
  echo "$1 $2: $3" | tee -a "$summary"
  [ "$1" = FAIL ] && failed+=("$2")
  return 0
}

# check NAME SECONDS [--expect REGEX] COMMAND...: runs a check with a time
# limit. It passes when the command exits 0 and, with --expect, its output
# has a line matching REGEX; the verdict quotes the output's last line
# that says something (a result, an error).
check() {
  local name=$1 limit=$2 expect=
  shift 2
  if [ "${1:-}" = --expect ]; then
    expect=$2
    shift 2
  fi
  local t0=$SECONDS rc
  echo "\$ $*" >"$out/$name.txt"
  timeout "$limit" "$@" >>"$out/$name.txt" 2>&1
  rc=$?
  local took=$((SECONDS - t0)) said
  said=$(grep -E 'PASS|FAIL|^ *GN2 |trained|rror|refus|cannot|not ' "$out/$name.txt" | tail -n 1 | sed 's/^ *//' | cut -c1-200)
  if [ $rc -eq 124 ]; then
    verdict FAIL "$name" "still running after the limit of $limit s"
  elif [ $rc -ne 0 ]; then
    verdict FAIL "$name" "exit $rc after $took s${said:+: $said}"
  elif [ -n "$expect" ] && ! grep -qE "$expect" "$out/$name.txt"; then
    verdict FAIL "$name" "exit 0 after $took s, but no line matches /$expect/"
  else
    verdict PASS "$name" "$took s${said:+: $said}"
  fi
}

# refcheck NAME SECONDS ARGS...: a check of the reference script, skipped
# only when REF is set empty.
refcheck() {
  local name=$1 limit=$2
  shift 2
  if [ -z "$ref" ]; then
    verdict SKIP "$name" "REF is empty"
  else
    check "$name" "$limit" --expect 'jets/s' python3 "$ref" "$@"
  fi
}

# set_key FILE TABLE KEY VALUE: sets KEY = VALUE in [TABLE] of a TOML file,
# replacing the key where the table has it, else as the table's first line.
set_key() {
  local file=$1 table=$2 key=$3 value=$4
  awk -v table="[$table]" -v key="$key" -v line="$key = $value" '
    /^\[/ { intable = ($0 == table); print; if (intable) print line; next }
    intable && $0 ~ "^" key " *=" { next }
    { print }' "$file" >"$file.new" && mv "$file.new" "$file"
}

# config FILE FROM TABLE.KEY=VALUE...: a copy of an example with keys set,
# beside it so that its relative data paths still hold.
config() {
  local file=examples/$1 from=examples/$2
  shift 2
  cp "$from" "$file"
  for kv in "$@"; do
    local tk=${kv%%=*} value=${kv#*=}
    set_key "$file" "${tk%.*}" "${tk##*.}" "$value"
  done
}

if [ "$device" = cuda ]; then
  check nvidia-smi 30 --expect . nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi
check version 30 --expect 'salt-ort' "$S" version
check gen-data 120 "$S" gen-data --out data/demo --train "$jets" --val $((jets / 6 > 200 ? jets / 6 : 200)) --test 2000

# 1. Loss match, CPU against CUDA (on the CPU: 2 threads against 1). A real
# GN2 run's first steps are in the warm-up, at learning rates from 1e-7;
# max = 1e-5 keeps these 5 steps there.
other=$device
[ "$device" = cpu ] && other=cpu-1thread
for d in cpu "$other"; do
  config "check-$d.toml" "$model" data.batch_size=100 data.num_train=500 data.num_val=200 training.epochs=1 \
    "training.device=\"${d%-1thread}\"" 'training.precision="fp32"' training.log_every=1 training.lr.max=1e-5
  [ "$d" = cpu-1thread ] && set_key "examples/check-$d.toml" training threads 1
  rm -rf "runs/check-$d"
  check "loss-$d" 300 "$S" train "examples/check-$d.toml" --out "runs/check-$d" --quiet
done
check loss-match 30 python3 "$here/compare.py" losses "runs/check-cpu/metrics/train.csv" "runs/check-$other/metrics/train.csv" "$loss_tol" 5

# 2. Throughput on the GPU, salt-ort and the reference side by side.
if [ "$device" = cuda ]; then
  for p in fp32 bf16 fp16; do
    # fp32 also at batch 100 and with the arena's plan at 4000 (issue 24:
    # step times at 100, 1000 and 4000, device memory beside the plan).
    extra=()
    [ "$p" = fp32 ] && extra=(--batch 100 --estimate 4000)
    check "bench-$p" 300 --expect 'jets/s' "$S" bench --device cuda --precision "$p" "${extra[@]}" --batch 1000 --batch 4000 --steps 50 --warmup 5
  done
  check bench-fp32-no-graph 200 --expect 'jets/s' "$S" bench --device cuda --precision fp32 --batch 1000 --mode train --steps 50 --warmup 5 --no-cuda-graph
  refcheck ref-fp32 200 --device cuda --batch 1000
  refcheck ref-bf16 200 --device cuda --batch 1000 --amp
  refcheck ref-compile-bf16 400 --device cuda --batch 1000 --amp --compile
  refcheck ref-fp32-4000 200 --device cuda --batch 4000
  refcheck ref-bf16-4000 200 --device cuda --batch 4000 --amp
fi

# 3. The CPU anchor of issue 5: the same thread count on the same machine.
check cpu-salt-ort 300 --expect 'jets/s' "$S" bench "examples/check-cpu.toml" --device cpu --threads 2 --batch 100 --mode train --steps 5 --warmup 1
refcheck cpu-ref 300 --device cpu --threads 2 --batch 100 --steps 5

# 4. Mixed precision against fp32 on the demo model.
precisions=(fp32)
[ "$device" = cuda ] && precisions=(fp32 bf16 fp16)
for p in "${precisions[@]}"; do
  config "mixed-$p.toml" gn2-small.toml training.epochs=2 "data.num_train=$mixed_train" "training.device=\"$device\"" "training.precision=\"$p\""
  rm -rf "runs/mixed-$p"
  check "mixed-$p" 600 "$S" train "examples/mixed-$p.toml" --out "runs/mixed-$p" --quiet
  cp "runs/mixed-$p/metrics/val.csv" "$out/val-$p.csv" 2>/dev/null
done
for p in "${precisions[@]:1}"; do
  check "mixed-$p-vs-fp32" 30 python3 "$here/compare.py" val "runs/mixed-fp32/metrics/val.csv" "runs/mixed-$p/metrics/val.csv" "$mixed_tol"
done
[ "$device" = cuda ] || verdict SKIP mixed-vs-fp32 "mixed precision needs DEVICE=cuda"
rm -f examples/check-*.toml examples/mixed-*.toml

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAIL: ${#failed[@]} check(s) failed: ${failed[*]}" | tee -a "$summary"
  exit 1
fi
echo "PASS: every check passed" | tee -a "$summary"
