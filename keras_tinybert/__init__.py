"""keras_tinybert: TinyBERT Transformer distillation for Keras 3 and keras-hub.

    import keras_tinybert as kt
    student = kt.models.student_like(teacher, num_layers=4, hidden_dim=312,
                                     intermediate_dim=1200)
    distiller = kt.Distiller(teacher, student, stage="intermediate")

Every name below is imported on first use (`kt.Distiller` imports Keras and
TensorFlow then), so that `import keras_tinybert.commands.distill` and
`keras-tinybert --help` answer in a fraction of a second without TensorFlow.
"""

import importlib as _importlib
import os as _os
import warnings as _warnings

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# Keras warns at every `fit` on a tf.data.Dataset that its default `shuffle=True` is
# ignored; the datasets here are shuffled when they are built, so nothing is to be done.
_warnings.filterwarnings(
    "ignore", category=UserWarning,
    message=r"`shuffle=True` was passed, but will be ignored since the data `x` was "
            r"provided as a tf\.data\.Dataset")

__version__ = "0.1.0"

# kt.<name> -> the sub-module that defines it (kt.Distiller: keras_tinybert.distiller).
_NAMES = {
    "Config": "config",
    "Distiller": "distiller",
    "LayerMap": "layer_map",
    "Taps": "taps",
}
# kt.<name> is the sub-module itself (kt.models: keras_tinybert.models).
_MODULES = (
    "augment", "config", "data", "distiller", "distribute", "export", "layer_map",
    "layout", "losses", "models", "optimizers", "plots", "resume", "runs", "taps",
    "testing", "train",
)


def __getattr__(name):
    """Import `name` from its sub-module the first time it is used."""
    if name in _NAMES:
        module = _importlib.import_module(f"keras_tinybert.{_NAMES[name]}")
        value = getattr(module, name)
    elif name in _MODULES:
        value = _importlib.import_module(f"keras_tinybert.{name}")
    else:
        raise AttributeError(f"module 'keras_tinybert' has no attribute {name!r}")
    globals()[name] = value  # later look-ups do not come back here
    return value


def __dir__():
    return sorted(set(globals()) | set(_NAMES) | set(_MODULES))
