#!/usr/bin/env bash
# Run `classsr bench` on every validation set, one JSON per set and scale, then a Markdown summary.
#
#   scripts/bench_val.sh                      # x4 and x2, 2 CPU threads, shipped weights, into results/bench/
#   SCALES=4 SETS="SunHays80 B100" scripts/bench_val.sh
#   DEVICE=cuda PRECISION=fp16 THREADS=2 RESULTS=results/bench-cuda scripts/bench_val.sh
#   scripts/bench_val.sh --model weights/other_x4.safetensors   # extra arguments go to every `classsr bench`
#
# Sets are looked up under $CLASSSR_DATA (default ../shared/data/val). Each run writes
# $RESULTS/<set>_x<scale>.json (only once it finished) and $RESULTS/bench.md tabulates all of them.
# Run it on an otherwise idle machine: timings of a shared CPU are not worth reporting.
set -euo pipefail
cd "$(dirname "$0")/.."

RESULTS=${RESULTS:-results/bench}
SETS=${SETS:-"Set5 Set14 B100 Urban100 SunHays80"}
SCALES=${SCALES:-"4 2"}
THREADS=${THREADS:-2}
DEVICE=${DEVICE:-cpu}
PRECISION=${PRECISION:-auto}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-1}

mkdir -p "$RESULTS"
for scale in $SCALES; do
    for set in $SETS; do
        out="$RESULTS/${set}_x${scale}.json"
        echo "classsr bench $set -x $scale --device $DEVICE --threads $THREADS -> $out" >&2
        python -m classsr_cli bench "$set" -x "$scale" --device "$DEVICE" --precision "$PRECISION" \
            --threads "$THREADS" --repeat "$REPEAT" --warmup "$WARMUP" --json "$@" > "$out.part"
        mv "$out.part" "$out"
    done
done
python scripts/bench_table.py "$RESULTS"/*.json > "$RESULTS/bench.md"
echo "summary: $RESULTS/bench.md" >&2
