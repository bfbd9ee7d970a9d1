"""keras_tinybert: TinyBERT Transformer distillation for Keras 3 and keras-hub."""

import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
