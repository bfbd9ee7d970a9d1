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

import keras
from keras import ops
from keras_hub.layers import TransformerEncoder
from keras_hub.src.layers.modeling.transformer_layer_utils import (
    merge_padding_and_attention_mask,
)


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

    def __init__(self, model, head=None):
        self.model = model
        self.backbone = backbone_of(model)
        self.blocks = list(self.backbone.transformer_layers)
        self.head = head if head is not None else default_head(model)
        self.embedding_model = keras.Model(
            self.backbone.input,
            _embedding_output_tensor(self.backbone),
            name=f"{self.backbone.name}_embeddings",
        )

    @property
    def num_layers(self):
        return len(self.blocks)

    @property
    def num_heads(self):
        return self.blocks[0].num_heads

    @property
    def hidden_dim(self):
        return self.blocks[0]._self_attention_layer._query_dense.kernel.shape[0]

    def __call__(self, inputs, training=False, attention=True):
        embedding_inputs = {k: inputs[k] for k in self.embedding_model.input}
        x = self.embedding_model(embedding_inputs, training=training)
        padding_mask = inputs["padding_mask"]
        outputs = {"embedding": x, "hidden": [], "attention": []}
        for block in self.blocks:
            x, scores = block_with_scores(block, x, padding_mask, training)
            outputs["hidden"].append(x)
            if attention:
                outputs["attention"].append(scores)
        if self.head is not None:
            outputs["logits"] = self.head(x, training)
        return outputs


def block_with_scores(block, x, padding_mask, training=False):
    """One `TransformerEncoder` block, returning (output, pre-softmax scores).

    The same computation as `TransformerEncoder.call` and Keras'
    `MultiHeadAttention` (explicit-scores path), with the scores QKᵀ/√d_head kept
    before the masked softmax. Scores are [B, H, T, T] (query on axis 2, key on 3).
    """
    mha = block._self_attention_layer
    mask = merge_padding_and_attention_mask(x, padding_mask, None)
    residual = x
    if block.normalize_first:
        x = block._self_attention_layer_norm(x)
    query = mha._query_dense(x)
    key = mha._key_dense(x)
    value = mha._value_dense(x)
    query = ops.multiply(query, ops.cast(mha._inverse_sqrt_key_dim, query.dtype))
    scores = ops.einsum(mha._dot_product_equation, key, query)
    probs = mha._masked_softmax(scores, mask)
    if mha._dropout > 0.0:
        probs = mha._dropout_layer(probs, training=training)
    context = ops.einsum(mha._combine_equation, probs, value)
    x = mha._output_dense(context)
    x = block._self_attention_dropout(x, training=training)
    x = x + residual
    if not block.normalize_first:
        x = block._self_attention_layer_norm(x)
    residual = x
    if block.normalize_first:
        x = block._feedforward_layer_norm(x)
    x = block._feedforward_intermediate_dense(x)
    x = block._feedforward_output_dense(x)
    x = block._feedforward_dropout(x, training=training)
    x = x + residual
    if not block.normalize_first:
        x = block._feedforward_layer_norm(x)
    return x, scores
