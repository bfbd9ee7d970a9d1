"""Run directories: where every fine-tuning and distillation stage writes its result,
and how models, tokenizers and metadata are read back.

A run is a new directory `<output>/<name>-<UTC time>/` (never reused, so nothing
earlier is overwritten), laid out the same for a teacher, a labels-only baseline and
a distilled student:

    model.keras       the trained model (`model.save`), a keras-hub task model
    metadata.json     what a user of the model needs: "label_names" (logit order),
                      "task" and its "text_fields" (e.g. ["premise", "hypothesis"],
                      the inputs to serve), "source" (the model it started from),
                      "teacher" and "distillation" (stage, layer map, temperature)
    config.json       the run's `kt.Config`, as a dict
    history.json      the Keras history (per-epoch losses and metrics)
    summary.json      seconds, parameter counts, dev metrics
    projections.npz   W_e/W_h of a distillation stage that trains them, so the next
                      stage starts from them

Runs written before this layout (`student.keras` or `model.keras`, metadata without
"task") still load: `find_model_file` knows the older names and `read_metadata`
fills "task" and "text_fields" from what the run holds.
"""

import datetime
import json
import pathlib

MODEL_FILE = "model.keras"
# Older runs: distillation wrote student.keras, fine-tuning model.keras.
MODEL_FILES = (MODEL_FILE, "student.keras", "teacher.keras")
METADATA_FILE = "metadata.json"
CONFIG_FILE = "config.json"
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


def find_model_file(path):
    """The `.keras` file of a run directory (or `path` itself); None if it has none.

    A directory's model is `model.keras` (older runs: `student.keras`,
    `teacher.keras`), else its only `.keras` file; several unknown ones are an error.
    """
    path = pathlib.Path(path)
    if path.suffix == ".keras":
        return path if path.is_file() else None
    if not path.is_dir():
        return None
    for name in MODEL_FILES:
        if (path / name).is_file():
            return path / name
    found = sorted(path.glob("*.keras"))
    if len(found) > 1:
        raise ValueError(
            f"{path} holds {len(found)} `.keras` files ({[f.name for f in found]}); "
            f"expected `{MODEL_FILE}`. Pass the `.keras` file itself."
        )
    return found[0] if found else None


def read_metadata(run_or_file):
    """The `metadata.json` of a run: its directory, its model file or the JSON itself.

    Returns a dict, empty when there is none. Older runs lack "task": it is taken
    from the run's config.json; "text_fields" is filled from the task.
    """
    path = pathlib.Path(run_or_file)
    if path.is_dir():
        path = path / METADATA_FILE
    elif path.suffix != ".json":
        path = path.with_name(METADATA_FILE)
    if not path.is_file():
        return {}
    metadata = json.loads(path.read_text())
    if not metadata.get("task"):
        config = path.with_name(CONFIG_FILE)
        config = json.loads(config.read_text()) if config.is_file() else {}
        metadata["task"] = config.get("task") if isinstance(config, dict) else None
    if metadata["task"] and not metadata.get("text_fields"):
        metadata["text_fields"] = text_fields(metadata["task"])
    return metadata


def text_fields(task):
    """The task's text inputs in model order: ["sentence"], ["premise", "hypothesis"]."""
    from keras_tinybert.data.tasks import get_task

    return list(get_task(task).tfds_text)


def load_model(spec, num_classes=None, sequence_length=128):
    """A model from a run, a `.keras` file, a Hugging Face folder or a preset.

    - a run directory or a `.keras` file: the model, with the label names of its
      metadata attached (`model.label_names`);
    - a Hugging Face BERT folder (`config.json`, `model.safetensors`, `vocab.txt`):
      keras-hub converts the backbone; with `num_classes` a fresh classifier head
      is put on it (the folder carries no head);
    - a keras-hub preset name (`bert_base_en_uncased`, needs a network).
    """
    import keras
    import keras_hub

    from keras_tinybert.data.labels import set_label_names

    path = pathlib.Path(str(spec))
    if path.suffix == ".keras" and not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    model_file = find_model_file(path)
    if model_file is not None:
        model = keras.saving.load_model(model_file)
        names = read_metadata(model_file).get("label_names")
        if names:
            set_label_names(model, names)
        return model
    if path.is_dir() and _is_run(path):
        raise FileNotFoundError(
            f"{path} is a run without a model file: is it finished? Runs save "
            f"`{MODEL_FILE}` when training ends."
        )
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


def _is_run(directory):
    """Whether `directory` is one of our runs (its config.json is a `kt.Config`)."""
    path = directory / CONFIG_FILE
    try:
        config = json.loads(path.read_text()) if path.is_file() else None
    except ValueError:
        return False
    return isinstance(config, dict) and "stage" in config and "teacher" in config


def _classifier_classes():
    import keras_hub

    return [getattr(keras_hub.models, n) for n in dir(keras_hub.models)
            if n.endswith("TextClassifier") and n != "TextClassifier"
            and getattr(getattr(keras_hub.models, n), "backbone_cls", None)]


def load_tokenizer(spec, model=None):
    """The tokenizer of `model` (its preprocessor's) or of `spec`: a keras-hub
    preset, a Hugging Face folder, or a run whose model has a preprocessor."""
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is not None:
        return preprocessor.tokenizer
    import keras_hub

    if find_model_file(spec) is not None:
        return load_model(spec).preprocessor.tokenizer
    return keras_hub.tokenizers.Tokenizer.from_preset(str(spec))


def save_run(run_dir, model, config, history, summary, *, teacher=None,
             projections=None):
    """Write a finished run into `run_dir` (the layout in this module's docstring).

    Args:
        model: the trained model (a teacher, a baseline or a student).
        config: the run's `kt.Config`.
        history, summary: `History.history` and the run's summary (JSON-ready after
            NumPy values become numbers).
        teacher: the distillation teacher (its label names if `model` has none).
        projections: `Distiller.projection_weights()`, saved to `projections.npz`.
    """
    from keras_tinybert.data.labels import label_names_of

    run_dir = pathlib.Path(run_dir)
    model.save(run_dir / MODEL_FILE)
    if projections:
        save_projections(run_dir / PROJECTIONS_FILE, projections)
    label_names = label_names_of(model) or (label_names_of(teacher) if teacher else None)
    distills = not config.is_finetune
    metadata = {
        "label_names": label_names,
        "task": config.task,
        "text_fields": text_fields(config.task) if config.task else None,
        "source": config.student if distills else config.teacher,
        "teacher": config.teacher if distills else None,
        "distillation": ({"stage": config.stage, "layer_map": config.layer_map,
                          "temperature": config.temperature} if distills else None),
    }
    _write(run_dir / METADATA_FILE, metadata)
    _write(run_dir / CONFIG_FILE, config.to_dict())
    _write(run_dir / "history.json", history)
    _write(run_dir / "summary.json", summary)


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
    path.write_text(json.dumps(_plain(payload), indent=2, default=str) + "\n")


def _plain(value):
    """JSON-friendly copy: NumPy scalars and arrays to Python numbers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
