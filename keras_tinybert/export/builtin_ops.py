"""TFLite builtin formulations of the keras-hub ops that TFLite's builtins lack.

Three families trace to TensorFlow ops that the TFLite converter cannot lower to its
builtin kernels, so their files would need Select TF ops (the Flex delegate, which
MediaPipe, the Task Library and the `ai-edge-litert` runtime do not link):

- DeBERTaV3's relative-position buckets take `Abs` and `Sign` of int64 positions;
- F-Net mixes tokens with `FFT2D` on complex numbers;
- RoFormerV2's rotary embedding slices every second feature, `x[..., ::2]`.

Each has an exact builtin formulation, computed from the same values:

- buckets: the same formula on float32 positions (exact below 2**24), cast back;
- F-Net: Re(FFT2(x)) over (T, H) is `C_T x C_H - S_T x S_H`, with the DFT matrices
  C_N[n, k] = cos(2π (nk mod N) / N) and S_N[n, k] = sin(2π (nk mod N) / N), since
  F_N = C_N - i S_N and x is real (Lee-Thorp et al. 2022 note this DFT-matrix form);
- rotary: features as (even, odd) pairs by a reshape to [..., d/2, 2] instead of
  strided slices.

`builtin_formulations(model)` makes the model's layers use them while the converter
traces it; outside it, every layer runs keras-hub's own code. Each formulation is a
method of the layer's class, replaced on the layer object only (never on the class),
and tests check it against keras-hub's original to float32 rounding.
"""

import contextlib
import math
import types

from keras import ops

_FORMULATIONS = []  # (layer class, method name, replacement)


def formulation(layer_class, method):
    """Register `function(layer, ...)` as the builtin form of `layer_class.method`."""
    def register(function):
        _FORMULATIONS.append((layer_class, method, function))
        return function
    return register


@contextlib.contextmanager
def builtin_formulations(model):
    """Within the block, every sublayer of `model` with a registered formulation runs
    it; yields the sorted names of the layer classes so changed."""
    replaced = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for layer_class, method, function in _FORMULATIONS:
            if isinstance(layer, layer_class):
                object.__setattr__(layer, method, types.MethodType(function, layer))
                replaced.append((layer, method))
    try:
        yield sorted({type(layer).__name__ for layer, _ in replaced})
    finally:
        for layer, method in replaced:
            object.__delattr__(layer, method)


def _register_keras_hub():
    """The formulations of keras-hub's layers (imported here: keras-hub is heavy)."""
    from keras_hub.layers import FNetEncoder
    from keras_hub.src.models.deberta_v3.disentangled_self_attention import (
        DisentangledSelfAttention,
    )
    from keras_hub.src.models.roformer_v2.roformer_v2_attention import (
        RoformrPositionalEmbedding,  # sic: keras-hub 0.32 spells it so
    )

    formulation(DisentangledSelfAttention, "_make_log_bucket_position")(log_bucket_position)
    formulation(FNetEncoder, "call")(f_net_encoder_call)
    formulation(RoformrPositionalEmbedding, "call")(rotary_embedding_call)


def log_bucket_position(layer, rel_pos):
    """DeBERTa's log-bucketed relative positions (He et al. 2021, §3.1 of DeBERTaV2's
    code): |δ| ≤ mid kept, beyond it mid + ⌈log(|δ|/mid)/log((P-1)/mid) · (mid-1)⌉ with
    δ's sign, P = max_position_embeddings, computed on float32 instead of int64."""
    dtype = rel_pos.dtype
    rel = ops.cast(rel_pos, "float32")
    mid = float(layer.bucket_size // 2)
    inside = ops.logical_and(ops.less(rel, mid), ops.greater(rel, -mid))
    size = ops.where(inside, mid - 1.0, ops.abs(rel))
    # the same float32 operations as keras-hub's, so that ceil rounds alike
    span = ops.log(ops.cast(layer.max_position_embeddings - 1, "float32") / mid)
    log_pos = mid + ops.ceil(ops.log(size / mid) * (mid - 1.0) / span)
    bucket = ops.where(ops.less_equal(size, mid), rel, log_pos * ops.sign(rel))
    return ops.cast(bucket, dtype)


def real_fft2(x):
    """Re(FFT2(x)) over the last two axes of a real float32 `x` [B, T, H], by DFT
    matrices: C_T x C_H - S_T x S_H."""
    def dft(n):
        index = ops.arange(n, dtype="int32")
        turns = ops.cast(ops.mod(index[:, None] * index[None, :], n), "float32")
        angle = turns * (2.0 * math.pi / ops.cast(n, "float32"))
        return ops.cos(angle), ops.sin(angle)

    cos_t, sin_t = dft(ops.shape(x)[1])
    cos_h, sin_h = dft(x.shape[-1])
    return (ops.einsum("ts,bsh->bth", cos_t, ops.matmul(x, cos_h))
            - ops.einsum("ts,bsh->bth", sin_t, ops.matmul(x, sin_h)))


def f_net_encoder_call(layer, inputs, training=None):
    """`FNetEncoder.call` with the Fourier mixing as `real_fft2`."""
    mixing = ops.cast(real_fft2(ops.cast(inputs, "float32")), inputs.dtype)
    mixing = layer._mixing_layer_norm(inputs + mixing)
    hidden = layer._output_dense(layer._intermediate_dense(mixing))
    hidden = layer._output_dropout(hidden, training=training)
    return layer._output_layer_norm(mixing + hidden)


def rotary_embedding_call(layer, tensors):
    """RoFormer's rotary embedding (Su et al. 2021, Eq. 34): each feature pair
    (x_2i, x_2i+1) at position m becomes (x_2i cos mθ_i - x_2i+1 sin mθ_i,
    x_2i+1 cos mθ_i + x_2i sin mθ_i), θ_i = base^(-2i/d); pairs by reshape, not ::2."""
    length = ops.shape(tensors[0])[1]
    half = layer.output_dim // 2
    theta = ops.power(float(layer.max_wavelength),
                      -2.0 * ops.arange(half, dtype="float32") / layer.output_dim)
    angle = ops.arange(length, dtype="float32")[:, None] * theta[None, :]  # [T, d/2]
    ndim = len(tensors[0].shape)
    shape = (1, -1) + (1,) * (ndim - 3) + (half,)  # positions on axis 1, as keras-hub aligns
    cos = ops.cast(ops.reshape(ops.cos(angle), shape), layer.compute_dtype)
    sin = ops.cast(ops.reshape(ops.sin(angle), shape), layer.compute_dtype)
    outputs = []
    for tensor in tensors:
        pairs = ops.reshape(tensor, tuple(ops.shape(tensor)[:-1]) + (half, 2))
        even, odd = pairs[..., 0], pairs[..., 1]
        rotated = ops.stack([even * cos - odd * sin, odd * cos + even * sin], axis=-1)
        outputs.append(ops.reshape(rotated, ops.shape(tensor)))
    return outputs[0] if len(outputs) == 1 else outputs


_register_keras_hub()
