#!/usr/bin/env bash
# One GPU session: train ClassSR-FSRCNN x4 and x2 side by side on one CUDA device with `classsr train all`,
# then time the x4 model with `classsr bench` on CUDA at fp32/fp16/bf16.
# Usage: TRAIN=path/to/train OUT=out BUDGET=430 BENCH=path/to/hr_images scripts/gpu_train.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-out}; TRAIN=${TRAIN:-../shared/data/train}; BUDGET=${BUDGET:-450}; BENCH=${BENCH:-examples}
mkdir -p "$OUT" runs
nvidia-smi -L
python3 -c "import torch, typer, rich, safetensors, PIL, numpy; print('torch', torch.__version__, torch.cuda.get_device_name())"
for s in 4 2; do
  ( timeout "$BUDGET" python3 -m classsr_cli train all --hr "$TRAIN/T91" --hr "$TRAIN/BSD200" \
      --config "configs/fsrcnn_x$s.toml" --out "runs/fsrcnn_x$s" --device cuda > "$OUT/train_x$s.log" 2>&1
    echo "exit=$?" >> "$OUT/train_x$s.log" ) &
done
wait
for s in 4 2; do tar cf "$OUT/run_x$s.tar" --exclude=data -C runs "fsrcnn_x$s"; done
if [ -f runs/fsrcnn_x4/classsr.safetensors ]; then
  for p in fp32 fp16 bf16; do
    timeout 40 python3 -m classsr_cli bench "$BENCH" -x 4 --model runs/fsrcnn_x4/classsr.safetensors \
      --device cuda --precision "$p" --repeat 5 --warmup 2 --json > "$OUT/bench_cuda_$p.json" 2>> "$OUT/bench.log"
  done
fi
tail -n 3 "$OUT"/train_x*.log
