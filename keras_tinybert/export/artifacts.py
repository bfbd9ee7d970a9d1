"""What every export shares: the token-id interface, reading a saved student and the
`metadata.json` written beside each artifact.

A student is read from a run directory (the layout of `keras_tinybert.runs`, which
every training run writes) or a `.keras` file:

    DIR/model.keras        the Keras model (`model.save`), a keras-hub task model such
                           as `BertTextClassifier`, preprocessor attached or not
                           (older runs: `student.keras`)
    DIR/metadata.json      optional; free-form JSON, these keys are understood:
                             "label_names":  ["negative", "positive"]
                             "task", "text_fields": the task and its text inputs
                             "teacher":      what the student was distilled from
                             "distillation": the distillation config (stage, layer
                                             map, temperature)
                           every other key is carried over into the export's metadata.
"""

import datetime
import hashlib
import json
import pathlib

import keras
import numpy as np
import tensorflow as tf

from keras_tinybert import runs

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")  # BERT's; other families take fewer
OUTPUT_NAMES = ("logits", "probabilities")
METADATA_FILE = runs.METADATA_FILE


def input_names(model):
    """The token-id inputs `model` takes, read from its own inputs (BERT: token_ids,
    segment_ids, padding_mask; RoBERTa, DistilBERT, XLM-R: no segment_ids; F-Net: no
    padding_mask), in `INPUT_NAMES` order, then any others by name."""
    names = list(model.input) if isinstance(model.input, dict) else []
    if not names:
        return INPUT_NAMES
    return tuple(n for n in INPUT_NAMES if n in names) + tuple(sorted(n for n in names if n not in INPUT_NAMES))


def complete_inputs(inputs, names):
    """`inputs` (int32 arrays keyed by a model's input names) with every one of `names`:
    a `.tflite` may take inputs its model does not read (`litert.file_inputs`), fed
    here as an all-ones mask and all-zero segment ids (what a client sends for one
    unpadded segment)."""
    ids = np.asarray(inputs["token_ids"])

    def fill(name):
        return np.ones_like(ids) if name == "padding_mask" else np.zeros_like(ids)

    return {name: inputs[name] if name in inputs else fill(name) for name in names}


def token_id_spec(names=INPUT_NAMES):
    """The token-id signature shared by SavedModel and TFLite: int32 [batch, length]
    for each of `names` (`input_names(model)`)."""
    return {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in names}


def require_tensorflow():
    """Exports are TensorFlow graphs (a SavedModel, the TFLite converter's input), so
    they are written by a process whose Keras backend is TensorFlow. A model trained
    on JAX is saved as `.keras` and exported from such a process."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(
            f"Export runs on Keras' TensorFlow backend; this process runs {backend!r}. Save the "
            "model (`model.save('student.keras')`; a .keras file loads on every backend) and "
            "export it with KERAS_BACKEND=tensorflow, e.g. `keras-tinybert export --model "
            "student.keras` (the command switches to TensorFlow itself).")


def inference_model(model):
    """`model` without its preprocessor: a functional model over the same layers,
    token ids in, logits out. Exports trace this, so that a tokenizer's tables
    (a byte-level BPE `HashTableV2`) never enter a token-id graph. A bare backbone
    is refused (it has no logits to serve), and so is another backend than
    TensorFlow (`require_tensorflow`)."""
    require_tensorflow()
    if isinstance(model.output, dict):
        raise ValueError(
            f"{type(model).__name__} is a backbone (outputs {sorted(model.output)}), not a classifier: "
            "an export serves logits. Export a task model (e.g. its TextClassifier, or the "
            "`student.keras` of a prediction-stage run).")
    return keras.Model(model.input, model.output, name=f"{model.name}_token_ids")


def serving_outputs(model, inputs):
    """The exported outputs: float32 logits and their softmax."""
    logits = tf.cast(model(inputs, training=False), tf.float32)
    return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}


def text_fields(metadata=None):
    """The names of the raw-text inputs for a student with `metadata`: its run's
    "text_fields" (e.g. ["premise", "hypothesis"]), else its GLUE task's fields, else
    ("text",). A sentence-pair model served with one text would never see the second."""
    metadata = metadata or {}
    fields = metadata.get("text_fields")
    if fields:
        return tuple(fields)
    task = metadata.get("task")
    if task:
        from keras_tinybert.data.tasks import get_task

        try:
            return tuple(get_task(task).tfds_text)
        except ValueError:  # not a GLUE task: nothing known about its fields
            pass
    return ("text",)


def find_preprocessor(model, preprocessor=None):
    """`preprocessor`, else the one attached to a keras-hub task model, else None."""
    return preprocessor if preprocessor is not None else getattr(model, "preprocessor", None)


def token_ids(preprocessor, sentences, names=None):
    """Tokenise and pack text with a keras-hub preprocessor: int32 NumPy arrays, one
    per preprocessor output (or per name of `names`, the model's `input_names`).

    `sentences` is a list of strings, or a dict of equal-length string columns for
    sentence pairs (e.g. {"premise": [...], "hypothesis": [...]}; packed in that order).
    """
    if preprocessor is None:
        raise ValueError(
            "Raw sentences need a tokenizer, but the model has no preprocessor: pass "
            "`preprocessor=` (a keras-hub TextClassifierPreprocessor) or token ids as a "
            f"dict with keys {list(INPUT_NAMES)}."
        )
    columns = text_columns(sentences)
    segments = tuple(tf.constant(column) for column in columns.values())
    packed = preprocessor(x=segments[0] if len(segments) == 1 else segments)  # a bare tuple is (x, y)
    return {name: np.asarray(packed[name]).astype("int32") for name in (names or packed)}


def text_columns(sentences):
    """{"text": [...]} for a list of strings; a dict of string columns as it is."""
    columns = sentences if isinstance(sentences, dict) else {"text": sentences}
    return {name: [str(s) for s in column] for name, column in columns.items()}


def is_token_ids(inputs):
    return isinstance(inputs, dict) and "token_ids" in inputs


def load_student(path):
    """Load a saved student: a run directory, or a `.keras` file.

    Returns `(model, metadata)`; `metadata` is the run's `metadata.json`
    (`runs.read_metadata`; empty dict when there is none).
    """
    path = pathlib.Path(path)
    if path.is_file() and path.suffix != ".keras":
        raise ValueError(f"{path} is not a `.keras` file; save with `model.save('{runs.MODEL_FILE}')`.")
    model_file = runs.find_model_file(path)
    if model_file is None:
        raise FileNotFoundError(
            f"No model at {path}: pass a `.keras` file or a run directory holding "
            f"`{runs.MODEL_FILE}` (older runs: `student.keras`), optionally with "
            f"`{METADATA_FILE}`."
        )
    return runs.load_model(model_file), runs.read_metadata(model_file)


def build_metadata(model, preprocessor=None, source=None, **fields):
    """The metadata of an export: labels, vocabulary hash, sequence length, teacher, config.

    `source` is the student's own `metadata.json` (see the module docstring); `fields`
    (format, quantization, signatures...) are added as they are.
    """
    source = dict(source or {})
    preprocessor = find_preprocessor(model, preprocessor)
    tokenizer = getattr(preprocessor, "tokenizer", None)
    vocabulary = tokenizer.get_vocabulary() if tokenizer is not None else None
    num_classes = int(model.output_shape[-1])
    label_names = source.pop("label_names", None) or [str(i) for i in range(num_classes)]
    if len(label_names) != num_classes:
        raise ValueError(
            f"metadata.json lists {len(label_names)} label_names but the model has "
            f"{num_classes} outputs; fix `label_names` in the student's metadata.json."
        )
    return {
        **source,
        "label_names": list(label_names),
        "num_classes": num_classes,
        "vocabulary_sha256": _vocabulary_hash(vocabulary),
        "vocabulary_size": len(vocabulary) if vocabulary else None,
        "lowercase": getattr(tokenizer, "lowercase", None),
        "sequence_length": getattr(preprocessor, "sequence_length", None),
        "teacher": source.get("teacher"),
        "distillation": source.get("distillation"),
        "inputs": list(input_names(model)),
        "outputs": list(OUTPUT_NAMES),
        "exported_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **fields,
    }


def _vocabulary_hash(vocabulary):
    """sha256 of the vocabulary, one token per line: ties an export to its tokenizer."""
    if not vocabulary:
        return None
    return hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest()


def metadata_path(artifact):
    """Where an artifact's metadata lives: `<version>/metadata.json` for a SavedModel,
    `<name>.metadata.json` beside `<name>.tflite` (so several TFLite files share a folder)."""
    artifact = pathlib.Path(artifact)
    if artifact.suffix == ".tflite":
        return artifact.with_suffix(".metadata.json")
    return artifact / METADATA_FILE


def write_json(path, payload):
    """Write `payload` as indented JSON, refusing to overwrite an existing file."""
    path = pathlib.Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; not overwriting it. Choose another output path.")
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def artifact_size_mb(artifact):
    """Size of a file, or of all files under a directory, in MB (10^6 bytes)."""
    artifact = pathlib.Path(artifact)
    files = [artifact] if artifact.is_file() else [f for f in artifact.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 1e6
