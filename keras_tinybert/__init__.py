"""keras_tinybert: TinyBERT Transformer distillation for Keras 3 and keras-hub.

    import keras_tinybert as kt
    student = kt.models.student_like(teacher, num_layers=4, hidden_dim=312,
                                     intermediate_dim=1200)
    distiller = kt.Distiller(teacher, student, stage="intermediate")
"""

import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_tinybert import layer_map  # noqa: E402
from keras_tinybert import layout  # noqa: E402
from keras_tinybert.config import Config  # noqa: E402
from keras_tinybert import losses  # noqa: E402
from keras_tinybert import models  # noqa: E402
from keras_tinybert import optimizers  # noqa: E402
from keras_tinybert import taps  # noqa: E402
from keras_tinybert.distiller import Distiller  # noqa: E402
from keras_tinybert.layer_map import LayerMap  # noqa: E402
from keras_tinybert.taps import Taps  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name):
    """Import the heavier sub-packages (export, data, augment, distribute) lazily."""
    import importlib

    if name in ("export", "data", "augment", "distribute", "pipeline", "resume"):
        return importlib.import_module(f"keras_tinybert.{name}")
    raise AttributeError(f"module 'keras_tinybert' has no attribute {name!r}")
