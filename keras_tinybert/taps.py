"""The internals TinyBERT matches, read off a keras-hub encoder in one forward pass.

TinyBERT (§3.1) distils four things from every mapped layer: the embedding output
H_0, each Transformer block's output H_m, each block's attention matrix

    A_m = Q_m K_mᵀ / √d_head          (Eq. 3, *before* softmax and dropout)

and, for a task model, the logits z. keras-hub's `TransformerEncoder` can return
attention *probabilities* (after softmax) but not the scores, so `Taps` runs each
block itself, step by step, with the block's own sub-layers: the query, key and value
projections are computed once, the scores are kept, and the block's output is exactly
the one keras-hub computes (a test checks both). Weights are the model's own; nothing
in keras-hub is modified and no weight is copied.

Backbones that work: any keras-hub backbone whose blocks are
`keras_hub.layers.TransformerEncoder` in `backbone.transformer_layers` and take the
embedding output plus a `padding_mask` — `BertBackbone`, `RobertaBackbone`,
`DistilBertBackbone`, `ElectraBackbone` and others of that shape (post- or pre-norm).
Logits are read for task models with a pooled-[CLS] head (`BertTextClassifier`:
`pooled_dense` → dropout → `output_dense`); other heads can pass `head=`.
"""

import os

import keras
import tensorflow as tf
from keras import ops
from keras_hub.layers import TransformerEncoder


def backbone_of(model):
    """The encoder backbone of a keras-hub task model (or the backbone itself)."""
    backbone = getattr(model, "backbone", model)
    blocks = getattr(backbone, "transformer_layers", None)
    if not blocks or not all(isinstance(b, TransformerEncoder) for b in blocks):
        raise ValueError(
            f"{type(model).__name__} is not a keras-hub encoder of the supported "
            f"shape: TinyBERT's taps need `backbone.transformer_layers`, a list of "
            f"keras_hub.layers.TransformerEncoder blocks (BertBackbone, "
            f"RobertaBackbone, DistilBertBackbone, ElectraBackbone, or a task "
            f"model built on one)."
        )
    return backbone


def _embedding_output_tensor(backbone):
    """The symbolic input of the first block, i.e. the embedding layer's output."""
    node = backbone.transformer_layers[0]._inbound_nodes[0]
    return node.arguments.args[0]


def _bert_head(task):
    """z = W·dropout(tanh(W_p·h_[CLS])): the head of `BertTextClassifier`."""
    backbone = task.backbone
    cls_index = getattr(backbone, "cls_token_index", 0)

    def head(sequence, training):
        pooled = backbone.pooled_dense(sequence[:, cls_index, :])
        pooled = task.output_dropout(pooled, training=training)
        return task.output_dense(pooled)

    return head


def default_head(model):
    """The logits head of a keras-hub classifier, or None for a bare backbone."""
    if getattr(model, "backbone", None) is None:
        return None
    backbone = model.backbone
    if all(hasattr(model, a) for a in ("output_dense", "output_dropout")) and hasattr(
        backbone, "pooled_dense"
    ):
        return _bert_head(model)
    raise ValueError(
        f"Taps cannot read the logits of {type(model).__name__}: its head is not "
        f"BERT's pooled-[CLS] head. Pass `head=fn(sequence_output, training)` that "
        f"returns the logits from the last block's output."
    )


def vocabulary_size(model):
    """Rows of the token embedding of `model`'s backbone (every family names the
    size differently: `vocabulary_size`, `vocab_size`; the embedding is the truth)."""
    backbone = getattr(model, "backbone", model)
    embedding = getattr(backbone, "token_embedding", None)
    if embedding is not None and getattr(embedding, "embeddings", None) is not None:
        return int(embedding.embeddings.shape[0])
    for name in ("vocabulary_size", "vocab_size"):
        if getattr(backbone, name, None) is not None:
            return int(getattr(backbone, name))
    raise ValueError(f"Cannot tell the vocabulary size of {type(model).__name__}.")


class Taps:
    """Embedding output, block outputs, pre-softmax attention scores and logits.

    Args:
        model: a keras-hub encoder backbone or a task model built on one.
        head: optional callable ``head(sequence_output, training) -> logits``;
            by default BERT's classification head when the model has one.

    Calling ``taps(inputs, training=False, attention=True)`` with keras-hub's input
    dict (``token_ids``, ``padding_mask`` and, for BERT, ``segment_ids``) returns a
    dict:

    - ``"embedding"``: [B, T, d], the input of the first block (H_0);
    - ``"hidden"``: list of M tensors [B, T, d], the outputs of blocks 1..M;
    - ``"attention"``: list of M tensors [B, H, T, T], QKᵀ/√d_head per block
      (empty when ``attention=False``);
    - ``"logits"``: [B, C] for a task model, else absent.
    """

    def __init__(self, model, head=None, logits=True):
        self.model = model
        self.backbone = backbone_of(model)
        self.blocks = list(self.backbone.transformer_layers)
        self.head = head
        if head is None and logits:
            self.head = default_head(model)
        self.embedding_model = keras.Model(
            self.backbone.input,
            _embedding_output_tensor(self.backbone),
            name=f"{self.backbone.name}_embeddings",
        )

    @property
    def has_logits(self):
        """Whether the taps include the model's logits (a task model's head)."""
        return self.head is not None

    @property
    def has_attention(self):
        """Whether the blocks have attention scores to tap (F-Net's do not)."""
        return True

    @property
    def num_layers(self):
        return len(self.blocks)

    @property
    def num_heads(self):
        return self.blocks[0].num_heads

    @property
    def hidden_dim(self):
        return self.blocks[0]._self_attention_layer._query_dense.kernel.shape[0]

    def __call__(self, inputs, training=False, attention=True, fused_norms=None):
        """The taps of one batch; `fused_norms` (default: where it pays, see
        `fused_norms_pay`) runs inference-mode layer norms as one fused kernel."""
        if fused_norms is None:
            fused_norms = fused_norms_pay()
        embedding_inputs = {k: inputs[k] for k in self.embedding_model.input}
        x = self.embedding_model(embedding_inputs, training=training)
        padding_mask = inputs["padding_mask"]
        outputs = {"embedding": x, "hidden": [], "attention": []}
        for block in self.blocks:
            x, scores = block_with_scores(block, x, padding_mask, training, fused_norms)
            outputs["hidden"].append(x)
            if attention:
                outputs["attention"].append(scores)
        if self.head is not None:
            outputs["logits"] = self.head(x, training)
        return outputs


def block_with_scores(block, x, padding_mask, training=False, fused_norms=False):
    """One `TransformerEncoder` block, returning (output, pre-softmax scores).

    The same computation as `TransformerEncoder.call` and Keras'
    `MultiHeadAttention` (explicit-scores path), with the scores QKᵀ/√d_head kept
    before the masked softmax. Scores are [B, H, T, T] (query on axis 2, key on 3).

    The block's own weights and sub-layers are used, in forms TensorFlow runs
    faster on a CPU (docs/PERFORMANCE.md); the outputs equal keras-hub's to float
    rounding (tests/test_taps.py):

    - projections as 2-D products on [B·T, d] rows plus `bias_add`, attention as
      batched products on [B, H, T, d_head] (Keras' einsums transpose their
      operands; with `bias_add` + activation Grappler fuses the feed-forward
      product, bias and GELU into one oneDNN kernel);
    - the masked softmax as softmax(scores + b) with b = 0 on tokens and −10⁹ on
      padding, [B, 1, 1, T], instead of Keras' two `where`s over [B, H, T, T];
    - with `fused_norms` in inference (`training=False`, the frozen teacher),
      layer norms through `layer_norm_inference`, which oneDNN runs as one
      fused kernel.
    """
    fused = fused_norms and not training
    mha = block._self_attention_layer
    shape = ops.shape(x)
    batch, length, width = shape[0], shape[1], x.shape[-1]
    rows = ops.reshape(x, (-1, width))
    residual = rows
    if block.normalize_first:
        rows = _norm(block._self_attention_layer_norm, rows, fused)
    query = _heads(mha._query_dense, rows, batch, length)
    query = ops.multiply(query, ops.cast(mha._inverse_sqrt_key_dim, query.dtype))
    key = _heads(mha._key_dense, rows, batch, length)
    value = _heads(mha._value_dense, rows, batch, length)
    scores = tf.matmul(query, key, transpose_b=True)  # [B, H, T, T]
    masked = scores if padding_mask is None else scores + padding_bias(padding_mask, scores.dtype)
    probs = tf.nn.softmax(masked)
    if mha._dropout > 0.0:
        probs = mha._dropout_layer(probs, training=training)
    context = ops.transpose(tf.matmul(probs, value), (0, 2, 1, 3))  # [B, T, H, dh]
    heads, head_dim = context.shape[2:]
    rows = ops.reshape(context, (batch * length, heads * head_dim))
    rows = _dense_rows(mha._output_dense, rows)
    rows = block._self_attention_dropout(rows, training=training)
    rows = rows + residual
    if not block.normalize_first:
        rows = _norm(block._self_attention_layer_norm, rows, fused)
    residual = rows
    if block.normalize_first:
        rows = _norm(block._feedforward_layer_norm, rows, fused)
    rows = _dense_rows(block._feedforward_intermediate_dense, rows)
    rows = _dense_rows(block._feedforward_output_dense, rows)
    rows = block._feedforward_dropout(rows, training=training)
    rows = rows + residual
    if not block.normalize_first:
        rows = _norm(block._feedforward_layer_norm, rows, fused)
    return ops.reshape(rows, (batch, length, width)), scores


def padding_bias(padding_mask, dtype):
    """[B, 1, 1, T]: 0 where a key is a token, −10⁹ where it is padding.

    softmax(scores + bias) equals Keras' masked softmax (which replaces masked
    scores by −10⁹ and zeroes their probabilities afterwards): exp(−10⁹) is 0.
    """
    mask = ops.cast(padding_mask, "bool")[:, None, None, :]
    return ops.cast(ops.where(mask, 0.0, -1e9), dtype)


def _norm(layer, rows, fused):
    """The block's `LayerNormalization` on [N, d] rows (optionally fused)."""
    if fused and _plain_layer_norm(layer):
        return layer_norm_inference(layer, rows)
    return layer(rows)


def fused_norms_pay():
    """Whether `layer_norm_inference` becomes one fused kernel here: TensorFlow's
    oneDNN build on a CPU-only machine. Under XLA (`jit_compile=True`, TPUs) the
    same graph is a slow batch norm over B·T channels, and GPUs have their own
    kernels, so there the Keras layer is used (the Distiller passes
    `fused_norms=False` when it is compiled with XLA)."""
    return (
        os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
        and not tf.config.list_logical_devices("GPU")
        and not tf.config.list_logical_devices("TPU")
    )


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
    here: the student's layer norms use the Keras layer.
    """
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


def _dense_rows(dense, rows):
    """A `Dense` or one of Keras' attention `EinsumDense`s on [N, d_in] rows, as
    a single [N, d_in] x [d_in, d_out] product (its kernel flattened), `bias_add`
    and its activation, if any."""
    if getattr(dense, "quantization_mode", None):  # its own quantized kernel
        return _quantized_rows(dense, rows)
    kernel = ops.cast(dense.kernel, rows.dtype)
    out = tf.matmul(rows, ops.reshape(kernel, (rows.shape[-1], -1)))
    if dense.bias is not None:
        out = tf.nn.bias_add(out, ops.reshape(ops.cast(dense.bias, rows.dtype), (-1,)))
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


def _heads(einsum_dense, rows, batch, length):
    """Q, K or V of [B·T, d] rows as [B, H, T, d_head]."""
    heads, head_dim = einsum_dense.kernel.shape[1:]
    out = ops.reshape(_dense_rows(einsum_dense, rows), (batch, length, heads, head_dim))
    return ops.transpose(out, (0, 2, 1, 3))
