#!/usr/bin/env bash
# One lent-GPU session for the routed engine (docs/results.md, "On a GPU"): scripts/gpu_check.py (correctness
# against the CPU, host syncs, call costs, the planner's call cost, cudnn.benchmark, torch.compile), then
# `classsr bench` on the set (LR from HR) and on photos at their own size, at fp32, bf16 and fp16.
#
#   DATA=folder/with/SunHays80 NATIVE="photo1.png photo2.png" OUT=out scripts/gpu_session.sh
# Every step has its own timeout so that one slow step cannot eat the lease; each JSON lands in $OUT.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-out}; DATA=${DATA:-../shared/data/val}; SET=${SET:-SunHays80}; DEVICE=${DEVICE:-cuda}
NATIVE=${NATIVE:-examples/lighthouse.jpg}; PRECISIONS=${PRECISIONS:-"fp32 bf16 fp16"}
SET_PRECISIONS=${SET_PRECISIONS:-$PRECISIONS}  # the set's bench runs metrics on the CPU: the slow part
CHECK_S=${CHECK_S:-280}; BENCH_S=${BENCH_S:-75}; NATIVE_S=${NATIVE_S:-25}
mkdir -p "$OUT"
log="$OUT/gpu_session.log"
{ nvidia-smi -L 2>/dev/null; python3 -c "import torch; print('torch', torch.__version__)"; } >> "$log" 2>&1
# shellcheck disable=SC2086
timeout "$CHECK_S" python3 scripts/gpu_check.py --device "$DEVICE" --precisions $PRECISIONS --data "$DATA" --set "$SET" \
    --native $NATIVE --out "$OUT/gpu_check.json" ${CHECK_ARGS:-} >> "$log" 2>&1; echo "gpu_check exit $?" >> "$log"
for p in $PRECISIONS; do
    # shellcheck disable=SC2086
    timeout "$NATIVE_S" python3 -m classsr_cli bench $NATIVE --native -x 4 --device "$DEVICE" --precision "$p" \
        --methods heavy,medium,classsr --repeat 5 --warmup 2 --json > "$OUT/native_$p.json" 2>> "$log"
    echo "native $p exit $?" >> "$log"
done
for p in $SET_PRECISIONS; do
    timeout "$BENCH_S" python3 -m classsr_cli bench "$SET" --data "$DATA" -x 4 --device "$DEVICE" --precision "$p" \
        --methods heavy,medium,classsr --repeat 5 --warmup 2 --json > "$OUT/bench_${SET}_$p.json" 2>> "$log"
    echo "bench $SET $p exit $?" >> "$log"
done
cat "$log"
