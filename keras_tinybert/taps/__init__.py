"""Taps: what TinyBERT reads inside a keras-hub encoder (`reader`), the block
adapters that compute it per block type, and the kernels they share.

    taps = Taps(model)                 # any keras-hub text encoder or classifier
    out = taps(model.preprocessor(["a sentence"]))
    out["embedding"], out["hidden"], out["attention"], out["logits"]
"""

from keras_tinybert.taps import disentangled_attention  # noqa: F401 (registers)
from keras_tinybert.taps import f_net  # noqa: F401 (registers)
from keras_tinybert.taps import roformer_v2  # noqa: F401 (registers)
from keras_tinybert.taps.kernels import fused_norms_pay
from keras_tinybert.taps.kernels import layer_norm_inference
from keras_tinybert.taps.kernels import padding_bias
from keras_tinybert.taps.reader import GraphHead
from keras_tinybert.taps.reader import Taps
from keras_tinybert.taps.reader import backbone_of
from keras_tinybert.taps.reader import block_calls
from keras_tinybert.taps.reader import vocabulary_size
from keras_tinybert.taps.registry import register_adapter
from keras_tinybert.taps.transformer_encoder import block_with_scores

__all__ = [
    "GraphHead",
    "Taps",
    "backbone_of",
    "block_calls",
    "block_with_scores",
    "fused_norms_pay",
    "layer_norm_inference",
    "padding_bias",
    "register_adapter",
    "vocabulary_size",
]
