"""The internals TinyBERT matches, read off a keras-hub encoder in one forward pass.

TinyBERT (§3.1) distils four things from every mapped layer: the embedding output
H_0, each Transformer block's output H_m, each block's attention matrix

    A_m = Q_m K_mᵀ / √d_head          (Eq. 3, *before* softmax and dropout)

and, for a task model, the logits z. keras-hub's blocks return at most attention
*probabilities*, so `Taps` replays the model's own functional graph and runs each
block call through the adapter of its block type (`registry`), which recomputes
the block with the block's own weights and keeps the scores; every other layer
runs as the model runs it. Nothing is copied or modified: the weights are the
model's.

- Blocks are found **by call** in the backbone's graph, so a layer called N times
  (ALBERT's shared block) gives N taps.
- The embedding output is the first block call's input.
- Logits come from replaying the task model's graph from the last block's
  output: the backbone's tail (BERT's `pooled_dense`, a final norm) and then the
  task head, whatever they are — nothing is written per family.
"""

import keras
from keras import tree

from keras_tinybert.taps import graph
from keras_tinybert.taps.kernels import fused_norms_pay
from keras_tinybert.taps.registry import adapter_for, registered_types


def backbone_of(model):
    """The encoder backbone of a keras-hub task model (or the backbone itself),
    checked to have blocks that `Taps` can read."""
    backbone = _backbone_or_self(model)
    block_calls(backbone)
    return backbone


def _backbone_or_self(model):
    backbone = getattr(model, "backbone", None)
    return model if backbone is None else backbone


def _declared_blocks(backbone):
    """The layers a keras-hub backbone lists as its blocks (ALBERT nests them in
    groups)."""
    return tree.flatten(getattr(backbone, "transformer_layers", None) or [])


def block_calls(backbone):
    """The calls of the backbone's encoder blocks, in order: [(node, adapter)]."""
    unknown = {type(b).__name__ for b in _declared_blocks(backbone) if adapter_for(b) is None}
    if unknown:
        raise ValueError(
            f"{type(backbone).__name__}'s blocks ({', '.join(sorted(unknown))}) have "
            f"no taps adapter; the known block types are {registered_types()}. Add "
            f"one with `keras_tinybert.taps.register_adapter`."
        )
    nodes = graph.call_nodes(backbone) if hasattr(backbone, "_nodes_by_depth") else []
    calls = [(n, adapter_for(n.operation)) for n in nodes if adapter_for(n.operation)]
    if not calls:
        raise ValueError(
            f"{type(backbone).__name__} is not a keras-hub encoder TinyBERT can "
            f"read: its graph calls no encoder block ({registered_types()}), as "
            f"the blocks of `backbone.transformer_layers` are in BertBackbone, "
            f"DebertaV3Backbone and the other keras-hub text encoders."
        )
    return calls


def vocabulary_size(model):
    """Rows of the token embedding of `model`'s backbone (every family names the
    size differently: `vocabulary_size`, `vocab_size`; the embedding is the truth)."""
    backbone = _backbone_or_self(model)
    embedding = getattr(backbone, "token_embedding", None)
    if embedding is not None and getattr(embedding, "embeddings", None) is not None:
        return int(embedding.embeddings.shape[0])
    for name in ("vocabulary_size", "vocab_size"):
        if getattr(backbone, name, None) is not None:
            return int(getattr(backbone, name))
    raise ValueError(f"Cannot tell the vocabulary size of {type(model).__name__}.")


class GraphHead:
    """A task model's logits from its last block's output, by replaying the
    model's graph: the backbone's layers after that block, then the task's."""

    def __init__(self, model, backbone, last_block_output):
        self.model = model
        self.backbone = backbone
        self.last = last_block_output

    def __call__(self, sequence, training=False, inputs=None, backbone_values=None):
        """Logits [B, C]; `inputs` are the model's inputs (for tails that read
        them, e.g. a padding mask), `backbone_values` the backbone's tensors
        already computed (by id), which are then not computed again."""
        inner = dict(backbone_values or {})
        inner[id(self.last)] = sequence
        outer = graph.feed(self.model, inputs) if inputs is not None else {}

        def run(node, args, kwargs):
            if node.operation is not self.backbone:
                return graph.run_layer(node, args, kwargs, training)
            inner.update(zip(map(id, tree.flatten(self.backbone._inputs_struct)),
                             tree.flatten(args)))
            outputs = tree.flatten(self.backbone._outputs_struct)
            values = graph.replay(self.backbone, outputs, inner, _plain(training))
            return tree.pack_sequence_as(self.backbone._outputs_struct, values)

        (logits,) = graph.replay(self.model, tree.flatten(self.model.outputs), outer, run)
        return logits


def _plain(training):
    return lambda node, args, kwargs: graph.run_layer(node, args, kwargs, training)


class Taps:
    """Embedding output, block outputs, pre-softmax attention scores and logits.

    Args:
        model: a keras-hub encoder backbone or a task model built on one (any
            family whose block types have an adapter: BERT, RoBERTa, XLM-R,
            DistilBERT, ALBERT, ELECTRA, DeBERTaV3, RoFormerV2, F-Net).
        head: optional callable ``head(sequence_output, training) -> logits``
            for a model whose logits are not in its own graph.
        logits: read the task model's logits (replaying its graph after the last
            block); False skips them, for stages that need none.

    Calling ``taps(inputs, training=False, attention=True)`` with the model's
    input dict returns a dict:

    - ``"embedding"``: [B, T, d], the input of the first block (H_0);
    - ``"hidden"``: list of M tensors [B, T, d], the outputs of block calls 1..M;
    - ``"attention"``: list of M tensors [B, H, T, T], each block's scores before
      the softmax (docs/FAMILIES.md says what they are per family); empty when
      ``attention=False`` or the blocks have no attention (F-Net);
    - ``"logits"``: [B, C] when ``has_logits``.
    """

    def __init__(self, model, head=None, logits=True):
        self.model = model
        self.backbone = backbone_of(model)
        calls = block_calls(self.backbone)
        self._adapters = {id(node): adapter for node, adapter in calls}
        self.blocks = [node.operation for node, _ in calls]
        first, last = calls[0][0], calls[-1][0]
        self._first_input = first.arguments.args[0]
        self._last_output = last.outputs[0]
        self._num_heads = calls[0][1].num_heads(self.blocks[0])
        self.head = head
        if head is None and logits and self.backbone is not model:
            self.head = GraphHead(model, self.backbone, self._last_output)

    @property
    def has_logits(self):
        """Whether the taps include logits (a task model's, or `head=`'s)."""
        return self.head is not None

    @property
    def has_attention(self):
        """Whether the blocks have attention scores to tap (F-Net's do not)."""
        return self._num_heads is not None

    @property
    def num_layers(self):
        """The number of block calls (ALBERT's shared block called N times: N)."""
        return len(self.blocks)

    @property
    def num_heads(self):
        """Attention heads per block, or None for blocks without attention."""
        return self._num_heads

    @property
    def hidden_dim(self):
        """The width d of the embedding output and of every block's output."""
        return self._first_input.shape[-1]

    def layers_read(self, logits):
        """The model's layers whose weights the taps depend on: every layer with
        `logits`, else only the backbone's layers between its inputs and the last
        block (not BERT's pooler, not the task head). Losses that read no logits
        give those other layers no gradient: TensorFlow returns None for them,
        JAX zeros, on which a weight decay would still shrink them."""
        if logits:
            return self.model._flatten_layers(include_self=False)
        known = {id(t): None for t in tree.flatten(self.backbone._inputs_struct)}
        needed = graph.needed_nodes([self._last_output], known)
        # Graph nodes are layers or plain ops (RoFormerV2's `ops.not_equal`
        # mask): only layers hold weights.
        return [node.operation for node in graph.call_nodes(self.backbone)
                if id(node) in needed and isinstance(node.operation, keras.layers.Layer)]

    def __call__(self, inputs, training=False, attention=True, fused_norms=None):
        """The taps of one batch; `fused_norms` (default: where it pays, see
        `fused_norms_pay`) runs inference-mode layer norms as one fused kernel."""
        if fused_norms is None:
            fused_norms = fused_norms_pay()
        outputs = {"embedding": None, "hidden": [], "attention": []}

        def run(node, args, kwargs):
            adapter = self._adapters.get(id(node))
            if adapter is None:
                return graph.run_layer(node, args, kwargs, training)
            if not outputs["hidden"]:
                outputs["embedding"] = args[0]
            y, scores = adapter.run(node.operation, *args, training=training,
                                    fused_norms=fused_norms, **kwargs)
            outputs["hidden"].append(y)
            if attention and scores is not None:
                outputs["attention"].append(scores)
            return y

        values = graph.feed(self.backbone, inputs)
        graph.replay(self.backbone, [self._last_output], values, run)
        if isinstance(self.head, GraphHead):
            outputs["logits"] = self.head(outputs["hidden"][-1], training, inputs, values)
        elif self.head is not None:
            outputs["logits"] = self.head(outputs["hidden"][-1], training)
        return outputs
