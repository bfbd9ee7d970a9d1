"""The arithmetic the block adapters share, in the forms TensorFlow runs fastest.

Each adapter recomputes its block with the block's own weights; these are the
pieces they have in common (docs/PERFORMANCE.md measures why each form was chosen):

- `dense_rows`: a Keras `Dense` / `EinsumDense` on [N, d] rows as one 2-D product,
  `bias_add` and activation (Grappler fuses them into one oneDNN kernel; Keras'
  einsums transpose their operands);
- `split_heads`: Q, K or V of [B·T, d] rows as [B, H, T, d_head];
- `attention_bias`: the additive mask, 0 on visible keys and −10⁹ elsewhere, so
  that softmax(scores + bias) is Keras' masked softmax;
- `layer_norm` / `layer_norm_inference`: a `LayerNormalization`, in inference
  optionally as one fused oneDNN kernel (`fused_norms_pay` says where it pays);
- `matmul`, `softmax`, `gather_columns`: TensorFlow's ops (transposed products
  without a transpose) on TensorFlow, `keras.ops` elsewhere.

Every TensorFlow form sits behind `on_tensorflow()`: on JAX (and any other
backend) the same functions are `keras.ops`, traceable by `jax.jit`, and
TensorFlow is not imported. The choice is made in Python when the step is
traced, so TensorFlow's graph is the same as before the dispatch.
"""

import os

import keras
from keras import ops


def on_tensorflow():
    """Whether Keras runs on TensorFlow (the fast paths below need its ops)."""
    return keras.backend.backend() == "tensorflow"


def matmul(a, b, transpose_b=False):
    """a · b (or a · bᵀ over the last two axes), batched over the leading ones."""
    if on_tensorflow():
        import tensorflow as tf

        return tf.matmul(a, b, transpose_b=transpose_b)
    return ops.matmul(a, ops.swapaxes(b, -1, -2) if transpose_b else b)


def softmax(x):
    """Softmax over the last axis."""
    if on_tensorflow():
        import tensorflow as tf

        return tf.nn.softmax(x)
    return ops.softmax(x, axis=-1)


def gather_columns(x, index):
    """out[..., i, j] = x[..., i, index[..., i, j]] (`index` shaped as the
    output, same leading axes as `x`)."""
    if on_tensorflow():
        import tensorflow as tf

        return tf.gather(x, index, batch_dims=index.shape.rank - 1)
    return ops.take_along_axis(x, index, axis=-1)


def padding_bias(padding_mask, dtype):
    """[B, 1, 1, T]: 0 where a key is a token, −10⁹ where it is padding.

    softmax(scores + bias) equals Keras' masked softmax (which replaces masked
    scores by −10⁹ and zeroes their probabilities afterwards): exp(−10⁹) is 0.
    """
    mask = ops.cast(padding_mask, "bool")[:, None, None, :]
    return ops.cast(ops.where(mask, 0.0, -1e9), dtype)


def attention_bias(x, padding_mask=None, attention_mask=None, dtype="float32"):
    """The additive mask of a keras-hub encoder block, or None without a mask.

    As keras-hub's `merge_padding_and_attention_mask`: the explicit
    `padding_mask` [B, T] (else the Keras mask `x` carries) masks keys, an
    `attention_mask` [B, T, T] masks (query, key) pairs, and both together take
    their minimum. Returns [B, 1, 1, T] or [B, 1, T, T].
    """
    if padding_mask is None:
        padding_mask = getattr(x, "_keras_mask", None)
    if attention_mask is None:
        return None if padding_mask is None else padding_bias(padding_mask, dtype)
    visible = ops.cast(attention_mask, "bool")[:, None, :, :]
    if padding_mask is not None:
        visible = ops.logical_and(visible, ops.cast(padding_mask, "bool")[:, None, None, :])
    return ops.cast(ops.where(visible, 0.0, -1e9), dtype)


def fused_norms_pay():
    """Whether `layer_norm_inference` becomes one fused kernel here: TensorFlow's
    oneDNN build on a CPU-only machine. Under XLA (`jit_compile=True`, TPUs) the
    same graph is a slow batch norm over B·T channels, and GPUs have their own
    kernels, so there the Keras layer is used (the Distiller passes
    `fused_norms=False` when it is compiled with XLA)."""
    if not on_tensorflow():
        return False
    import tensorflow as tf

    return (
        os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
        and not tf.config.list_logical_devices("GPU")
        and not tf.config.list_logical_devices("TPU")
    )


def layer_norm(layer, rows, fused):
    """The block's `LayerNormalization` on [N, d] rows (fused when asked and the
    layer is a plain one: last axis, with γ and β, not RMS)."""
    if fused and on_tensorflow() and _plain_layer_norm(layer):
        return layer_norm_inference(layer, rows)
    return layer(rows)


def _plain_layer_norm(layer):
    return (
        layer.axis in (-1, [-1], (-1,), 1, [1], (1,))
        and layer.center
        and layer.scale
        and not getattr(layer, "rms_scaling", False)
    )


def layer_norm_inference(layer, rows):
    """y = γ·(x − μ)/√(σ² + ε) + β over the last axis of [N, d] rows, as one
    `FusedBatchNormV3` on [1, N, d, 1] (N "channels" of d values each).

    This is the graph that TensorFlow's oneDNN build rewrites into its fused
    `_MklLayerNorm` kernel (Grappler's remapper: reshape → FusedBatchNormV3 with
    unit scale and zero offset → reshape → ·γ → +β): 0.7 ms instead of 5–6 ms for
    Keras' `LayerNormalization` on 4096 × 768 rows. The fill sizes go through
    `PlaceholderWithDefault` so that constant folding keeps the `Fill`s the
    pattern needs. The raw op keeps the layer's ε (BERT's 10⁻¹²);
    `tf.nn.fused_batch_norm` would raise it to 10⁻⁵. No gradient is meant to flow
    here: the student's layer norms use the Keras layer. TensorFlow only.
    """
    import tensorflow as tf

    dtype = rows.dtype
    x = ops.cast(rows, "float32")
    count = tf.raw_ops.PlaceholderWithDefault(input=tf.shape(x)[:1], shape=[1])
    empty = tf.constant([], "float32")
    normed = tf.raw_ops.FusedBatchNormV3(
        x=tf.reshape(x, (1, -1, x.shape[-1], 1)),
        scale=tf.fill(count, 1.0),
        offset=tf.fill(count, 0.0),
        mean=empty,
        variance=empty,
        epsilon=float(layer.epsilon),
        data_format="NCHW",
        is_training=True,
    )[0]
    normed = tf.reshape(normed, tf.shape(x))
    out = normed * ops.cast(layer.gamma, "float32") + ops.cast(layer.beta, "float32")
    return ops.cast(out, dtype)


def dense_rows(dense, rows):
    """A `Dense` or one of Keras' attention `EinsumDense`s on [N, d_in] rows, as
    a single [N, d_in] x [d_in, d_out] product (its kernel flattened), `bias_add`
    and its activation, if any."""
    if getattr(dense, "quantization_mode", None):  # its own quantized kernel
        return _quantized_rows(dense, rows)
    kernel = ops.reshape(ops.cast(dense.kernel, rows.dtype), (rows.shape[-1], -1))
    bias = None
    if dense.bias is not None:
        bias = ops.reshape(ops.cast(dense.bias, rows.dtype), (-1,))
    if on_tensorflow():
        import tensorflow as tf

        out = tf.matmul(rows, kernel)
        out = out if bias is None else tf.nn.bias_add(out, bias)
    else:
        out = ops.matmul(rows, kernel)
        out = out if bias is None else out + bias
    activation = getattr(dense, "activation", None)
    return out if activation is None else activation(out)


def _quantized_rows(dense, rows):
    """A quantized (`int8`, `float8`, …) layer called as Keras calls it, on rows
    shaped [1, N, *its input feature dims] (the output projection takes
    [B, T, H, d_head]), flattened back to [N, d_out]."""
    rank = getattr(dense.input_spec, "ndim", None) or 3  # a Dense: [1, N, d_in]
    features = tuple(dense.kernel.shape[: rank - 2])
    out = dense(ops.reshape(rows, (1, -1) + features))
    return ops.reshape(out, (ops.shape(rows)[0], -1))


def split_heads(projected, batch, length, heads):
    """[B·T, H·d_head] rows as [B, H, T, d_head]."""
    out = ops.reshape(projected, (batch, length, heads, projected.shape[-1] // heads))
    return ops.transpose(out, (0, 2, 1, 3))


def merge_heads(context):
    """[B, H, T, d_head] as [B·T, H·d_head] rows."""
    heads, head_dim = context.shape[1], context.shape[3]
    return ops.reshape(ops.transpose(context, (0, 2, 1, 3)), (-1, heads * head_dim))
