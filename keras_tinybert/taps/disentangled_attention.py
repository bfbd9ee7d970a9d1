"""DeBERTaV3's `DisentangledAttentionEncoder`: output and the full score matrix.

DeBERTa's attention (He et al. 2021, Eq. 4) sums three terms for query i, key j,
with δ(i, j) the bucketed relative position of i and j, P the relative position
embeddings and scale s = 1/√(3·d_head):

    A_ij = s · (Q_i·K_j  +  Q_i·K^P_δ(i,j)  +  K_j·Q^P_δ(j,i))
               content     content→position   position→content

TinyBERT's attention matrix for DeBERTaV3 is this A (before the masked softmax),
the matrix whose softmax weights the values. The block's own projections give
Q, K, V and Q^P, K^P (DeBERTa shares them between content and positions), and
the block's own `_get_rel_pos` gives δ, so positions are bucketed as keras-hub
buckets them.
"""

from keras import ops

from keras_hub.src.models.deberta_v3.disentangled_attention_encoder import (
    DisentangledAttentionEncoder,
)
from keras_tinybert.taps import kernels
from keras_tinybert.taps.registry import register_adapter


def disentangled_block_with_scores(block, x, rel_embeddings, padding_mask=None,
                                   attention_mask=None, training=False,
                                   fused_norms=False):
    """One `DisentangledAttentionEncoder` call → (output, A [B, H, T, T])."""
    fused = fused_norms and not training
    attention = block._self_attention_layer
    shape = ops.shape(x)
    batch, length, width = shape[0], shape[1], x.shape[-1]
    heads = attention.num_heads
    rows = ops.reshape(x, (-1, width))
    scale = ops.cast(attention.scale_factor, x.dtype)

    def project(dense, values, n, size):
        return kernels.split_heads(kernels.dense_rows(dense, values), n, size, heads)

    query = project(attention._query_dense, rows, batch, length) * scale
    key = project(attention._key_dense, rows, batch, length)
    value = project(attention._value_dense, rows, batch, length)
    positions = _position_rows(attention, rel_embeddings, training)
    count, span = ops.shape(positions)[0], ops.shape(positions)[1]
    positions = ops.reshape(positions, (-1, width))
    position_query = project(attention._query_dense, positions, count, span) * scale
    position_key = project(attention._key_dense, positions, count, span)

    scores = kernels.matmul(query, key, transpose_b=True)
    scores += _relative(attention, kernels.matmul(query, position_key, transpose_b=True),
                        length, sign=1)
    scores += ops.transpose(
        _relative(attention, kernels.matmul(key, position_query, transpose_b=True),
                  length, sign=-1),
        (0, 1, 3, 2),
    )

    bias = kernels.attention_bias(x, padding_mask, attention_mask, scores.dtype)
    probs = kernels.softmax(scores if bias is None else scores + bias)
    probs = attention._attn_dropout_layer(probs, training=training)
    rows_out = kernels.dense_rows(attention._output_dense,
                                  kernels.merge_heads(kernels.matmul(probs, value)))
    rows_out = block._self_attention_dropout(rows_out, training=training)
    rows = kernels.layer_norm(block._self_attention_layer_norm, rows_out + rows, fused)
    residual = rows
    rows = kernels.dense_rows(block._feedforward_intermediate_dense, rows)
    rows = kernels.dense_rows(block._feedforward_output_dense, rows)
    rows = block._feedforward_dropout(rows, training=training)
    rows = kernels.layer_norm(block._feedforward_layer_norm, rows + residual, fused)
    return ops.reshape(rows, (batch, length, width)), scores


def _position_rows(attention, rel_embeddings, training):
    """The relative embeddings P [B', 2k, d]. keras-hub repeats one P per
    example; without position dropout every copy is the same, so one is
    projected and broadcast (keras-hub projects all B)."""
    if training and attention.dropout > 0.0:
        return attention._position_dropout_layer(rel_embeddings, training=training)
    return rel_embeddings[:1]


def _relative(attention, against_positions, length, sign):
    """Pick, for each (i, j), the column of δ = sign·δ(i, j) from scores against
    all 2k relative positions [B, H, T, 2k] → [B, H, T, T]."""
    span = attention.bucket_size
    rel_pos = attention._get_rel_pos(length)[0, 0]  # [T, T], the block's buckets
    index = ops.clip(sign * rel_pos + span, 0, 2 * span - 1)
    rows = ops.shape(against_positions)
    index = ops.broadcast_to(index, (rows[0], rows[1], length, length))
    return kernels.gather_columns(against_positions, index)


def _run(block, x, rel_embeddings, padding_mask=None, attention_mask=None,
         training=False, fused_norms=False):
    return disentangled_block_with_scores(
        block, x, rel_embeddings, padding_mask, attention_mask, training, fused_norms
    )


register_adapter(DisentangledAttentionEncoder, _run,
                 num_heads=lambda block: block.num_heads)
