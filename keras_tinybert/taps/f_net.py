"""F-Net's `FNetEncoder`: a block without attention.

F-Net (Lee-Thorp et al. 2022) mixes tokens with a 2-D Fourier transform instead of
self-attention, so it has no attention matrix for TinyBERT's attention loss; its
embedding, hidden-state and prediction losses work as for any family. The block
is run as keras-hub runs it.
"""

from keras_hub.layers import FNetEncoder

from keras_tinybert.taps.registry import register_adapter


def _run(block, x, training=False, fused_norms=False):
    del fused_norms
    return block(x, training=training), None


register_adapter(FNetEncoder, _run, num_heads=lambda block: None)
