"""`keras-tinybert evaluate`: GLUE metric, size and CPU latency of a model or run.

    keras-tinybert evaluate --model runs/distill-prediction-... --task sst2 \\
        --data-dir ../shared/data/sst2 --seq-len 128 --latency --export-sizes \\
        --json results/student.json

Prints the task's dev metric(s), the total and encoder (Transformer-block) parameter
counts, with `--latency` the median Keras CPU latency in ms at batch 1 and batch 32
(on random token ids of `--seq-len`, after warm-up calls), and with `--export-sizes`
the MB of a float32 SavedModel and of an int8 TFLite file exported to a temporary
folder. `evaluate_model` returns the same numbers as a dict (scripts/results.py uses
it to build docs/RESULTS.md).
"""

import json
import pathlib
import sys
import tempfile
import time

import numpy as np

LATENCY_BATCHES = (1, 32)
WARMUP_CALLS = 3
TIMED_CALLS = 10
CALIBRATION_EXAMPLES = 200


def add_arguments(parser):
    parser.add_argument("--model", required=True,
                        help="a run directory (student.keras / model.keras) or a .keras file")
    parser.add_argument("--task", default="sst2", help="GLUE task (default sst2)")
    parser.add_argument("--data-dir", help="local GLUE folder; default: TFDS")
    parser.add_argument("--seq-len", type=int, default=128,
                        help="tokens per example for evaluation and latency (default 128)")
    parser.add_argument("--latency", action="store_true",
                        help="median Keras CPU latency at batch 1 and 32")
    parser.add_argument("--export-sizes", action="store_true",
                        help="MB of a float SavedModel and an int8 TFLite export")
    parser.add_argument("--json", help="also write the results to this JSON file")


def run(args):
    try:
        result = evaluate_model(args.model, args.task, args.data_dir, args.seq_len,
                                latency=args.latency, export_sizes=args.export_sizes)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_result(result))
    if args.json:
        path = pathlib.Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


def load(model_path):
    """The model of a run directory or `.keras` file, with a clear error if absent."""
    from keras_tinybert import runs

    path = pathlib.Path(model_path)
    if not path.exists():
        raise FileNotFoundError(
            f"No run or model at {path}: pass a run directory (holding student.keras "
            "or model.keras) or a .keras file."
        )
    if path.is_dir() and not any(path.glob("*.keras")):
        raise FileNotFoundError(
            f"{path} holds no .keras model: is it a finished run? Runs save "
            "student.keras (distill) or model.keras (finetune-teacher) when they end."
        )
    return runs.load_model(path)


def evaluate_model(model_path, task="sst2", data_dir=None, seq_len=128, *,
                   latency=False, export_sizes=False):
    """Dev metric(s), parameter counts and optionally latency and export sizes.

    Returns a JSON-ready dict: "model", "task", "seq_len", "metrics" ({name: value}),
    "shape" ("4L-312H"), "parameters", "encoder_parameters"; with `latency`
    "latency_ms_batch1" and "latency_ms_batch32"; with `export_sizes`
    "saved_model_mb" and "tflite_int8_mb".
    """
    import keras_tinybert as kt

    model = load(model_path)
    check_seq_len(model, seq_len)
    result = {
        "model": str(model_path),
        "task": kt.data.get_task(task).name,
        "seq_len": seq_len,
        "metrics": kt.data.evaluate(model, task, data_dir=data_dir,
                                    sequence_length=seq_len),
        "shape": shape_of(model),
        "parameters": int(model.count_params()),
        "encoder_parameters": int(kt.models.encoder_parameters(model)),
    }
    if latency:
        result.update(latency_ms(model, seq_len))
    if export_sizes:
        result.update(export_sizes_mb(model, task, data_dir, seq_len))
    return result


def shape_of(model):
    """"<layers>L-<hidden>H" of the model's encoder, e.g. "4L-312H"."""
    from keras_tinybert.taps import backbone_of

    backbone = backbone_of(model)
    hidden = getattr(backbone, "hidden_dim", None)
    return f"{len(backbone.transformer_layers)}L-{hidden}H"


def check_seq_len(model, seq_len):
    """`seq_len` must fit the backbone's position embeddings."""
    limit = getattr(getattr(model, "backbone", model), "max_sequence_length", None)
    if limit is not None and seq_len > limit:
        raise ValueError(
            f"--seq-len {seq_len} is longer than the model's {limit} positions; "
            f"pass --seq-len {limit} or less."
        )


def latency_ms(model, seq_len, batches=LATENCY_BATCHES, calls=TIMED_CALLS):
    """Median wall-clock ms of a compiled forward pass, per batch size.

    The model runs as a `tf.function` on token ids (no tokenisation, as in serving):
    `WARMUP_CALLS` untimed calls trace it and warm the caches, then the median of
    `calls` timed ones resists a busy machine better than the mean.
    """
    import tensorflow as tf

    from keras_tinybert.commands.export import _random_token_ids

    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    result = {}
    for batch_size in batches:
        inputs = {k: tf.constant(v) for k, v in
                  _random_token_ids(model, batch_size, seq_len).items()}
        for _ in range(WARMUP_CALLS):
            forward(inputs).numpy()
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            forward(inputs).numpy()
            times.append((time.perf_counter() - start) * 1000.0)
        result[f"latency_ms_batch{batch_size}"] = float(np.median(times))
    return result


def export_sizes_mb(model, task, data_dir, seq_len):
    """MB of a float32 SavedModel (tokenizer in the graph) and an int8 TFLite file.

    Both are written to a temporary folder and deleted; int8 is calibrated on up to
    `CALIBRATION_EXAMPLES` task sentences (train split, else dev).
    """
    from keras_tinybert import export
    from keras_tinybert.export.artifacts import artifact_size_mb

    calibration = calibration_token_ids(model, task, data_dir, seq_len)
    with tempfile.TemporaryDirectory() as tmp:
        version_dir = export.saved_model(model, pathlib.Path(tmp) / "saved" / "model",
                                         preprocessor=getattr(model, "preprocessor", None))
        tflite_file = export.tflite(model, pathlib.Path(tmp) / "model_int8.tflite",
                                    quantization="int8", representative_data=calibration)
        return {"saved_model_mb": artifact_size_mb(version_dir),
                "tflite_int8_mb": artifact_size_mb(tflite_file)}


def calibration_token_ids(model, task, data_dir, seq_len):
    """Token ids of the task's first sentences (train split, else dev) for int8."""
    import keras_tinybert as kt
    from keras_tinybert.export import INPUT_NAMES

    try:
        texts = kt.data.load_glue(task, "train", data_dir)
    except FileNotFoundError:
        texts = kt.data.load_glue(task, "dev", data_dir)
    batches = kt.data.to_model_inputs(texts.take(CALIBRATION_EXAMPLES), model,
                                      CALIBRATION_EXAMPLES, sequence_length=seq_len)
    x, _ = next(iter(batches))
    return {name: np.asarray(x[name]).astype("int32") for name in INPUT_NAMES}


def format_result(result):
    """The result as aligned `name: value` lines."""
    lines = [f"model: {result['model']} ({result['shape']})",
             f"task: {result['task']} (dev)"]
    lines += [f"{name}: {value:.4f}" for name, value in result["metrics"].items()]
    lines += [f"parameters: {result['parameters']:,}",
              f"encoder_parameters: {result['encoder_parameters']:,}"]
    for key in ("latency_ms_batch1", "latency_ms_batch32"):
        if key in result:
            lines.append(f"{key}: {result[key]:.2f} (seq_len {result['seq_len']})")
    for key in ("saved_model_mb", "tflite_int8_mb"):
        if key in result:
            lines.append(f"{key}: {result[key]:.2f}")
    return "\n".join(lines)
