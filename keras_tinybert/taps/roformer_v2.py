"""RoFormerV2's `RoformerV2Encoder`: output and scores after the rotary rotation.

RoFormer (Su et al. 2021) rotates queries and keys by their positions, R_i q_i,
R_j k_j, so that their product depends on i − j only. TinyBERT's attention matrix
for RoFormerV2 is

    A_ij = (R_i q_i)·(R_j k_j) / √d_head

the scores keras-hub feeds to its softmax, computed with the block's own rotary
layer and projections.

keras-hub 0.32 on TensorFlow reshapes the block's [B, T] mask to [B, 1, T, 1], so
it masks padded *queries* (their rows become uniform) and lets every query see
padded keys; this adapter reproduces that forward pass exactly (its outputs are
the teacher's), and the attention loss masks padded keys as for every family.
"""

from keras import ops

from keras_hub.src.models.roformer_v2.roformer_v2_encoder import RoformerV2Encoder
from keras_tinybert.taps import kernels
from keras_tinybert.taps.registry import register_adapter

# keras' TensorFlow `dot_product_attention` fills masked scores with this value.
_MASKED = -0.7 * 3.38953e38


def roformer_block_with_scores(block, x, attention_mask=None, training=False,
                               fused_norms=False):
    """One `RoformerV2Encoder` call → (output, rotated QKᵀ/√d_head [B, H, T, T])."""
    del fused_norms  # RoFormerV2's norms are RMS norms: the Keras layer runs them
    attention = block.attention_layer
    shape = ops.shape(x)
    batch, length, width = shape[0], shape[1], x.shape[-1]
    heads, head_size = attention.heads, attention.head_size
    rows = ops.reshape(x, (-1, width))

    def project(dense):
        out = kernels.dense_rows(dense, rows)
        return ops.reshape(out, (batch, length, heads, head_size))

    query, key = attention.rotary_embedding_layer([project(attention.q_dense),
                                                   project(attention.k_dense)])
    value = project(attention.v_dense)
    to_heads = (0, 2, 1, 3)
    query = ops.transpose(query, to_heads) * ops.cast(head_size**-0.5, x.dtype)
    scores = kernels.matmul(query, ops.transpose(key, to_heads), transpose_b=True)
    masked = scores
    if attention_mask is not None:  # [B, T] applied to queries, as keras-hub does
        visible = ops.reshape(ops.cast(attention_mask, "bool"), (batch, 1, length, 1))
        masked = ops.where(visible, scores, ops.cast(_MASKED, scores.dtype))
    probs = kernels.softmax(masked)
    context = kernels.merge_heads(kernels.matmul(probs, ops.transpose(value, to_heads)))
    rows_out = kernels.dense_rows(attention.o_dense, context)
    rows = block.attention_norm(rows + block.dropout_layer(rows_out, training=training))
    ffn = kernels.dense_rows(block.feedforward_intermediate_dense, rows)
    ffn = kernels.dense_rows(block.feedforward_output_dense, ffn)
    rows = block.feedforward_norm(rows + block.dropout_layer(ffn, training=training))
    return ops.reshape(rows, (batch, length, width)), scores


register_adapter(RoformerV2Encoder, roformer_block_with_scores,
                 num_heads=lambda block: block.heads)
