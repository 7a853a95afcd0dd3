#!/bin/bash
# The runs behind docs/results.md, "Self-ensemble (`--tta`) at ×4": each model and set benched without the
# self-ensemble, then with it, one after the other; then `python scripts/tta_table.py --root OUT` tabulates them.
#   scripts/tta_runs.sh [OUT (docs/results/fiftyninth)] [TTA (8)]
# TTAS="8" runs only the self-ensemble's runs again (the fifty-ninth pass redid them after passes were added band
# by band into the mean); the default is both, "1 TTA". MODELS, SETS and SCALE (4) choose other runs, e.g.
#   SCALE=2 MODELS=classsr_residual_x2 SETS="Set5 Set14 B100" scripts/tta_runs.sh
set -euo pipefail
out=${1:-docs/results/fiftyninth}
tta=${2:-8}
mkdir -p "$out"
for m in ${MODELS:-classsr_residual_x4 classsr_residual64_x4}; do
  for set in ${SETS:-Set5 Set14 B100 Urban100 SunHays80}; do
    for t in ${TTAS:-1 $tta}; do
      echo "$(date -u +%T) $m $set tta $t load $(cut -d' ' -f1 /proc/loadavg)" >> "$out/tta_log.txt"
      python -m classsr_cli bench "$set" -x "${SCALE:-4}" --model "$m" --threads 2 --methods bicubic,heavy,classsr --repeat 2 \
        --tta "$t" --json > "$out/tta_${m}_${set}_t${t}.json"
    done
  done
done
echo "$(date -u +%T) done" >> "$out/tta_log.txt"
