#!/usr/bin/env bash
# Continue task distillation of an earlier student (docs/RESULTS.md, the 3L-288H rows):
# more intermediate-layer epochs on the augmented SST-2 rows (starting from the
# student's run's projections when it saved them), then the prediction stage, both with
# a warm-up + cosine learning rate and a bfloat16 teacher forward.
#   TEACHER=runs/teacher-sst2-... START=runs/.../distill-intermediate-... \
#   AUG=runs/sst2-3l/train-augmented.tsv bash scripts/sst2_continue.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export KT_DATA_DIR="${KT_DATA_DIR:-$(cd .. && pwd)/shared/data}"
OUT="${OUT:-runs/sst2-3l-10}"
INTER_EPOCHS="${INTER_EPOCHS:-6}"
PRED_EPOCHS="${PRED_EPOCHS:-3}"
LR="${LR:-3e-4}"
mkdir -p "$OUT/logs"
common=(--teacher "$TEACHER" --task sst2 --data-dir "$KT_DATA_DIR/sst2" --train-file "$AUG"
        --seq-len 64 --batch-size 32 --lr "$LR" --schedule cosine
        --teacher-precision bfloat16 --output "$OUT")
latest() { ls -d "$OUT"/$1 | tail -n 1; }

echo "== intermediate-layer distillation from $START, $INTER_EPOCHS more epochs"
keras-tinybert distill --stage intermediate --student "$START" --epochs "$INTER_EPOCHS" \
    "${common[@]}" > "$OUT/logs/intermediate.log" 2>&1
INTER="$(latest 'distill-intermediate-*')"
echo "== prediction-layer distillation, $PRED_EPOCHS epochs"
keras-tinybert distill --stage prediction --student "$INTER" --epochs "$PRED_EPOCHS" \
    "${common[@]}" > "$OUT/logs/prediction.log" 2>&1
echo "continue-$START: $INTER $(latest 'distill-prediction-*')" >> "$OUT/runs.txt"
echo "== done"; cat "$OUT/runs.txt"
