"""keras-hub's `TransformerEncoder` (BERT, RoBERTa, XLM-R, DistilBERT, ALBERT,
ELECTRA): output and QKᵀ/√d_head, the scores of TinyBERT's Eq. 3."""

from keras import ops
from keras_hub.layers import TransformerEncoder

from keras_tinybert.taps import kernels
from keras_tinybert.taps.registry import register_adapter


def block_with_scores(block, x, padding_mask=None, training=False, fused_norms=False,
                      attention_mask=None):
    """One `TransformerEncoder` call, returning (output, pre-softmax scores).

    The same computation as `TransformerEncoder.call` and Keras'
    `MultiHeadAttention` (explicit-scores path), with the scores QKᵀ/√d_head kept
    before the masked softmax. Scores are [B, H, T, T] (query on axis 2, key on 3).

    The block's own weights and sub-layers are used, in forms TensorFlow runs
    faster on a CPU (`kernels`, docs/PERFORMANCE.md); the outputs equal
    keras-hub's to float rounding (tests/test_taps_transformer_encoder.py):
    projections as 2-D products on [B·T, d] rows, attention as batched products
    on [B, H, T, d_head], the masked softmax as softmax(scores + bias), and with
    `fused_norms` in inference (`training=False`, the frozen teacher) the layer
    norms as one fused oneDNN kernel.
    """
    fused = fused_norms and not training
    mha = block._self_attention_layer
    shape = ops.shape(x)
    batch, length, width = shape[0], shape[1], x.shape[-1]
    heads = mha._query_dense.kernel.shape[1]
    rows = ops.reshape(x, (-1, width))
    residual = rows
    if block.normalize_first:
        rows = kernels.layer_norm(block._self_attention_layer_norm, rows, fused)
    query = kernels.split_heads(kernels.dense_rows(mha._query_dense, rows), batch, length, heads)
    query = ops.multiply(query, ops.cast(mha._inverse_sqrt_key_dim, query.dtype))
    key = kernels.split_heads(kernels.dense_rows(mha._key_dense, rows), batch, length, heads)
    value = kernels.split_heads(kernels.dense_rows(mha._value_dense, rows), batch, length, heads)
    scores = kernels.matmul(query, key, transpose_b=True)  # [B, H, T, T]
    bias = kernels.attention_bias(x, padding_mask, attention_mask, scores.dtype)
    probs = kernels.softmax(scores if bias is None else scores + bias)
    if mha._dropout > 0.0:
        probs = mha._dropout_layer(probs, training=training)
    rows = kernels.dense_rows(mha._output_dense, kernels.merge_heads(kernels.matmul(probs, value)))
    rows = block._self_attention_dropout(rows, training=training)
    rows = rows + residual
    if not block.normalize_first:
        rows = kernels.layer_norm(block._self_attention_layer_norm, rows, fused)
    residual = rows
    if block.normalize_first:
        rows = kernels.layer_norm(block._feedforward_layer_norm, rows, fused)
    rows = kernels.dense_rows(block._feedforward_intermediate_dense, rows)
    rows = kernels.dense_rows(block._feedforward_output_dense, rows)
    rows = block._feedforward_dropout(rows, training=training)
    rows = rows + residual
    if not block.normalize_first:
        rows = kernels.layer_norm(block._feedforward_layer_norm, rows, fused)
    return ops.reshape(rows, (batch, length, width)), scores


def _run(block, x, padding_mask=None, attention_mask=None, training=False,
         fused_norms=False):
    return block_with_scores(block, x, padding_mask, training, fused_norms, attention_mask)


register_adapter(TransformerEncoder, _run, num_heads=lambda block: block.num_heads)
