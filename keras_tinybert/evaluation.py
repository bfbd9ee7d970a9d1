"""Evaluate a model or run: its GLUE dev metric(s), parameter counts, CPU latency and
export sizes, on any Keras backend (what `keras-tinybert evaluate` prints and
scripts/results.py tabulates).

`evaluate_model` returns a JSON-ready dict; the metric comes from `kt.data.evaluate`,
the latency from the model compiled for the backend (`inference.inference_forward`)
on random token ids, the sizes from a float32 SavedModel and an int8 TFLite file
written to a temporary folder.
"""

import pathlib
import tempfile
import time

import numpy as np

from keras_tinybert.export.parity import random_token_ids
from keras_tinybert.inference import inference_forward

LATENCY_BATCHES = (1, 32)
WARMUP_CALLS = 3
TIMED_CALLS = 10
CALIBRATION_EXAMPLES = 200


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

    The model runs compiled for the backend (`inference_forward`: a `tf.function`,
    or `jax.jit` on JAX) on token ids (no tokenisation, as in serving), outputs
    fetched to the host: `WARMUP_CALLS` untimed calls compile it and warm the
    caches, then the median of `calls` timed ones resists a busy machine better
    than the mean.
    """
    forward = inference_forward(model)
    result = {}
    for batch_size in batches:
        inputs = random_token_ids(model, batch_size, seq_len)
        for _ in range(WARMUP_CALLS):
            forward(inputs)
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            forward(inputs)
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
    from keras_tinybert.export import input_names

    try:
        texts = kt.data.load_glue(task, "train", data_dir)
    except FileNotFoundError:
        texts = kt.data.load_glue(task, "dev", data_dir)
    batches = kt.data.to_model_inputs(texts.take(CALIBRATION_EXAMPLES), model,
                                      CALIBRATION_EXAMPLES, sequence_length=seq_len)
    x, _ = next(iter(batches))
    return {name: np.asarray(x[name]).astype("int32") for name in input_names(model)}
