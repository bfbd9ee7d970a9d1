"""TFLite (LiteRT) export: float32, float16, dynamic-range and full-integer int8.

The TFLite model takes token ids, never raw text: TF Text's tokenizer ops are not in
the LiteRT runtime, so on device the app tokenises (WordPiece, same vocabulary: check
`vocabulary_sha256` in the metadata) and feeds int32 `token_ids`, `segment_ids`,
`padding_mask`. Batch and length are dynamic (-1); the interpreter resizes per call.
Only TFLite builtin ops are used, so the plain LiteRT runtime runs it (no Flex delegate).
"""

import pathlib
import tempfile

import numpy as np
import tensorflow as tf

from keras_tinybert.export.artifacts import (
    build_metadata,
    find_preprocessor,
    metadata_path,
    token_ids,
    write_json,
)
from keras_tinybert.export.savedmodel import token_id_archive

QUANTIZATIONS = (None, "dynamic", "float16", "int8")


def tflite(
    model,
    path,
    quantization=None,
    representative_data=None,
    preprocessor=None,
    metadata=None,
):
    """Convert `model` to a `.tflite` file at `path`; return the path.

    quantization:
      None       float32 weights and activations.
      "float16"  float16 weights, float32 compute: half the size, near-float accuracy.
      "dynamic"  int8 weights, activations quantised on the fly per op.
      "int8"     full-integer: int8 weights *and* activations, calibrated on
                 `representative_data` (real sentences, tokenised with `preprocessor` or
                 the model's own; or a dict of int32 token-id arrays). Inputs stay int32
                 token ids (they are indices); outputs are dequantised float32 logits.
    """
    quantization = normalize_quantization(quantization)
    path = pathlib.Path(path)
    _check_output(path)
    calibration = None
    if quantization == "int8":
        calibration = _calibration_inputs(model, representative_data, preprocessor)
    content = convert(model, quantization, calibration)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    write_json(
        metadata_path(path),
        build_metadata(
            model,
            preprocessor,
            source=metadata,
            format="tflite",
            quantization=quantization or "none",
            calibration_examples=None if calibration is None else len(calibration["token_ids"]),
        ),
    )
    return path


def normalize_quantization(quantization):
    """None / "none" -> None; otherwise one of `QUANTIZATIONS`, or a clear error."""
    if quantization in (None, "none", "float32"):
        return None
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"Unknown quantization {quantization!r}; use one of None, 'dynamic', "
            "'float16' or 'int8'."
        )
    return quantization


def convert(model, quantization=None, calibration=None):
    """The TFLite flatbuffer bytes for `model` (via a token-id SavedModel)."""
    with tempfile.TemporaryDirectory() as tmp:
        archive, serve_token_ids = token_id_archive(model)
        archive.add_endpoint("serving_default", serve_token_ids)
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantization == "int8":
            converter.representative_dataset = _unpadded_examples(calibration)
            # Fail rather than silently keep float ops: every op must have an int8 kernel.
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()


def _unpadded_examples(inputs):
    """A representative-dataset generator: one example at a time, cut to its real length.

    keras-hub's attention fills padded keys with about -2e38 before the softmax. Seen in
    calibration, that value would set the int8 range of the attention scores and crush
    every real score to zero. Without padding it is never seen; at inference a padded
    key saturates at the lowest int8 score instead, which the softmax all but ignores.
    """
    lengths = np.asarray(inputs["padding_mask"]).astype(bool).sum(axis=1)

    def generate():
        for i, length in enumerate(lengths):
            yield {name: array[i : i + 1, :length] for name, array in inputs.items()}

    return generate


def _calibration_inputs(model, representative_data, preprocessor):
    """Token ids to calibrate int8 activation ranges on."""
    if representative_data is None or len(representative_data) == 0:
        raise ValueError(
            "quantization='int8' needs representative_data: a few hundred real sentences "
            "from the task (e.g. training-set sentences) or a dict of int32 token ids, so "
            "activation ranges are calibrated on the data the model will see."
        )
    if isinstance(representative_data, dict):
        return {name: np.asarray(array, dtype="int32") for name, array in representative_data.items()}
    return token_ids(find_preprocessor(model, preprocessor), representative_data)


def _check_output(path):
    if path.suffix != ".tflite":
        raise ValueError(f"TFLite output must end with `.tflite`; got {path}.")
    for existing in (path, metadata_path(path)):
        if existing.exists():
            raise FileExistsError(f"{existing} exists; not overwriting it. Choose another output path.")
