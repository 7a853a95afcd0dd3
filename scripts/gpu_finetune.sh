#!/usr/bin/env bash
# Resume GPU runs in RUNS/fsrcnn_x{4,2} (stages up to the classifier done) with the current recipe: the joint
# fine-tuning stage and the export. Usage: RUNS=.devdata/runs TRAIN=.devdata/train OUT=out scripts/gpu_finetune.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-out}; TRAIN=${TRAIN:-../shared/data/train}; RUNS=${RUNS:-runs}
for s in 4 2; do
  ( timeout 170 python3 -m classsr_cli train all --hr "$TRAIN/T91" --hr "$TRAIN/BSD200" --config "configs/fsrcnn_x$s.toml" \
      --out "$RUNS/fsrcnn_x$s" --device cuda > "$OUT/finetune_x$s.log" 2>&1; echo "exit=$?" >> "$OUT/finetune_x$s.log"
    cp "$RUNS/fsrcnn_x$s/classsr.safetensors" "$OUT/classsr_fsrcnn_x$s.safetensors"
    cp "$RUNS/fsrcnn_x$s/metrics.jsonl" "$OUT/metrics_x$s.jsonl" ) &
done
wait
tail -n 2 "$OUT"/finetune_x*.log
