"""The paper's two-stage recipe as runs: load models, distil a stage, save the run.

TinyBERT (§3.2) distils in two stages: *general* distillation from a pre-trained
teacher on plain text, then *task-specific* distillation from a fine-tuned teacher on
(augmented) task data — intermediate layers first, then the prediction layer. Each
stage here is a *run*: a new directory holding the student (`student.keras`), its
`metadata.json`, the run's `config.json`, `history.json` and a `summary.json`. A run
directory is never reused: nothing earlier is overwritten.
"""

import datetime
import json
import pathlib

import keras

from keras_tinybert.data.labels import label_names_of, set_label_names

MODEL_FILE = "student.keras"
PROJECTIONS_FILE = "projections.npz"


def new_run_dir(base, name):
    """`base/<name>-<UTC time>` (plus `-2`, `-3`… if taken), created empty."""
    base = pathlib.Path(base)
    base.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    for i in range(1, 1000):
        path = base / (f"{name}-{stamp}" + (f"-{i}" if i > 1 else ""))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"Could not create a new run directory under {base}.")


def load_model(spec, num_classes=None, sequence_length=128):
    """A model from a saved run, a `.keras` file, a Hugging Face folder or a preset.

    - a `.keras` file, or a directory holding `student.keras` / `model.keras`;
    - a Hugging Face BERT folder (`config.json`, `model.safetensors`, `vocab.txt`):
      keras-hub converts the backbone; with `num_classes` a fresh classifier head
      is put on it (the folder carries no head);
    - a keras-hub preset name (`bert_base_en_uncased`, needs a network).
    """
    import keras_hub

    path = pathlib.Path(str(spec))
    if path.suffix == ".keras" or (path.is_dir() and _keras_file(path)):
        model_file = path if path.suffix == ".keras" else _keras_file(path)
        if not model_file.exists():
            raise FileNotFoundError(f"No model file at {model_file}.")
        model = keras.saving.load_model(model_file)
        meta = model_file.parent / "metadata.json"
        if meta.exists():
            names = json.loads(meta.read_text()).get("label_names")
            if names:
                set_label_names(model, names)
        return model
    if path.is_dir() and not (path / "config.json").exists():
        raise FileNotFoundError(
            f"{path} holds neither a `.keras` model nor a Hugging Face config.json."
        )
    if num_classes is None:
        return keras_hub.models.Backbone.from_preset(str(spec))
    preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
        str(spec), sequence_length=sequence_length
    )
    backbone = keras_hub.models.Backbone.from_preset(str(spec))
    task_class = keras_hub.models.TextClassifier
    for cls in _classifier_classes():
        if isinstance(backbone, cls.backbone_cls):
            task_class = cls
            break
    return task_class(backbone=backbone, num_classes=num_classes, preprocessor=preprocessor)


def load_tokenizer(spec, model=None):
    """The WordPiece tokenizer of `model` (its preprocessor's) or of `spec`: a
    keras-hub preset, a Hugging Face folder, or a saved run with a preprocessor."""
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is not None:
        return preprocessor.tokenizer
    import keras_hub

    path = pathlib.Path(str(spec))
    if path.is_dir() and _keras_file(path) is not None:
        return load_model(path).preprocessor.tokenizer
    return keras_hub.tokenizers.Tokenizer.from_preset(str(spec))


def _keras_file(directory):
    for name in (MODEL_FILE, "model.keras", "teacher.keras"):
        if (directory / name).exists():
            return directory / name
    found = sorted(directory.glob("*.keras"))
    return found[0] if found else None


def _classifier_classes():
    import keras_hub

    return [getattr(keras_hub.models, n) for n in dir(keras_hub.models)
            if n.endswith("TextClassifier") and n != "TextClassifier"
            and getattr(getattr(keras_hub.models, n), "backbone_cls", None)]


def save_run(run_dir, student, history, config, summary, teacher=None,
             projections=None):
    """Write the student, its metadata and the run's records into `run_dir`;
    `projections` (`Distiller.projection_weights()`) go to `projections.npz`."""
    run_dir = pathlib.Path(run_dir)
    student.save(run_dir / MODEL_FILE)
    if projections:
        save_projections(run_dir / PROJECTIONS_FILE, projections)
    metadata = {
        "label_names": label_names_of(student) or label_names_of(teacher),
        "teacher": config.get("teacher"),
        "distillation": {k: config.get(k) for k in
                         ("stage", "layer_map", "loss_weights", "temperature")},
    }
    _write(run_dir / "metadata.json", metadata)
    _write(run_dir / "config.json", config)
    _write(run_dir / "history.json", _plain(history))
    _write(run_dir / "summary.json", _plain(summary))


def save_projections(path, projections):
    """`{name: [kernel, bias]}` → one `.npz` with keys `name/0`, `name/1`."""
    import numpy as np

    np.savez(path, **{f"{name}/{i}": w for name, weights in projections.items()
                      for i, w in enumerate(weights)})


def load_projections(run_dir):
    """The projections a run saved (`{name: [kernel, bias]}`), or None."""
    import numpy as np

    path = pathlib.Path(run_dir) / PROJECTIONS_FILE
    if not path.exists():
        return None
    with np.load(path) as arrays:
        keys = sorted(arrays.files, key=lambda k: (k.rsplit("/", 1)[0],
                                                   int(k.rsplit("/", 1)[1])))
        projections = {}
        for key in keys:
            projections.setdefault(key.rsplit("/", 1)[0], []).append(arrays[key])
    return projections


def _write(path, payload):
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def _plain(value):
    """JSON-friendly copy: numpy scalars and arrays to Python numbers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
