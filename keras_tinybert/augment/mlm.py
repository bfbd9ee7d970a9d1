"""Masked-LM candidates for single-piece words (§3.1), batched across words and sentences.

For the word at position i of a sentence whose WordPieces are `w_1 .. w_n`, the paper's
code builds one masked-LM input per word,

    [CLS] w_1 .. [MASK] .. w_n [SEP] w_1 .. w_n [SEP]      (segments 0 ... 0 1 ... 1)

(the masked sentence, then the original as the second segment) and keeps the top-K
predictions at the mask that are not `##` continuations. It runs the model once per word,
and its model (`BertForMaskedLM`) projects *every* position to the vocabulary, though it
reads one. Here the output is the same for less work:

- all (sentence, word) rows of a call are built at once, identical rows (a sentence
  seen twice, a premise repeated across MNLI pairs) are computed once and remembered,
  and the rows are sorted by length and run `batch_size` at a time, each batch padded
  to its longest row, through one compiled function that returns only the top-K ids;
- the head (dense, layer norm, the vocabulary projection: 384 × 30,522 for MiniLM, as
  many multiply-adds per token as the whole 6-layer encoder) runs only at the masked
  position, and so does the encoder's last block, except for its keys and values (the
  masked position still attends to every position): for a keras-hub
  `TransformerEncoder` stack, its query, attention output and feed-forward are computed
  for one position instead of all (MiniLM: a sixth of the encoder's work, 83% of it saved);
- rows are built only for eligible single-piece words (`Augmenter`).

Optionally (`dtype="bfloat16"`) the encoder's matrix products run in bfloat16 (its
dense layers under keras' `mixed_bfloat16` policy; embeddings, residual sums, layer
norms, softmax and the head stay float32), for CPUs with fast bfloat16 matrix units
(on the 2-core AVX512_BF16 CPU of docs/AUGMENTATION.md it was no faster for SST-2's rows).
The top-K *set* changes only where the K-th and (K+1)-th logits nearly tie (half of
MiniLM's rows have a gap under 0.04, a tenth under 0.006), so rows whose bfloat16 gap
`z_K - z_{K+1}` is below `recheck_margin` are run again in float32: the sets then match
float32's on ≥ 95% of words (measured in docs/AUGMENTATION.md).

Any keras-hub `MaskedLM` with a WordPiece tokenizer works (`BertMaskedLM`, ...).
"""

import numpy as np
import tensorflow as tf

from keras_tinybert.augment.mlm_head import mlm_head, sequence_output

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class MaskedLMCandidates:
    """Top-K whole-word masked-LM predictions for many (sentence, word) pairs at once.

    Args:
        masked_lm: a keras-hub `MaskedLM` with a preprocessor (for its tokenizer).
        k: the K of the paper (15): predictions kept before dropping `##` pieces.
        batch_size: rows per masked-LM call.
        drop_special: also drop `[UNK]`, `[CLS]`, ... (the paper's code keeps them, but a
            "[UNK]" written into a sentence is never a useful replacement).
        dtype: `None` (the model's own) or `"bfloat16"`: the encoder's matrix products
            in bfloat16, everything else (and the head, so the top-K) in float32.
        recheck_margin: with `dtype`, rows whose K-th and (K+1)-th logits are closer
            than this are computed again in float32 (0: never).
        cache_size: rows whose top-K is remembered across calls (0: none).

    Raises:
        ValueError: the tokenizer's vocabulary does not match the model's embedding.
    """

    def __init__(self, masked_lm, k=15, batch_size=64, drop_special=True, dtype=None,
                 recheck_margin=0.01, cache_size=200_000):
        if masked_lm.preprocessor is None:
            raise ValueError("The masked LM needs a preprocessor (for its tokenizer).")
        self.model, self.k, self.batch_size, self.dtype = masked_lm, k, batch_size, dtype
        self.recheck_margin, self.rechecked = recheck_margin, [0, 0]  # [re-run, all] rows
        self.tokenizer = masked_lm.preprocessor.tokenizer
        self.vocabulary = self.tokenizer.get_vocabulary()
        model_vocab = masked_lm.backbone.vocabulary_size
        if len(self.vocabulary) != model_vocab:
            raise ValueError(
                f"The tokenizer has {len(self.vocabulary)} WordPieces but the masked LM's "
                f"embedding has {model_vocab} rows: vocabulary and model do not match. "
                "Load both from the same preset."
            )
        if "[MASK]" not in self.vocabulary:
            raise ValueError("The masked LM's vocabulary has no [MASK] token.")
        self.max_length = masked_lm.backbone.max_sequence_length
        ids = {t: self.vocabulary.index(t) for t in SPECIAL_TOKENS if t in self.vocabulary}
        self.cls_id, self.sep_id, self.mask_id = ids["[CLS]"], ids["[SEP]"], ids["[MASK]"]
        self.pad_id = ids.get("[PAD]", 0)
        drop = set(ids.values()) if drop_special else set()
        self.whole_word = np.array(
            [not t.startswith("##") and i not in drop for i, t in enumerate(self.vocabulary)]
        )
        self.head = mlm_head(masked_lm, tied=False)
        self.encoder = masked_lm.backbone
        self.fast_encoder = None if dtype is None else with_matmul_dtype(self.encoder, dtype)
        self.cache_size, self._cache = cache_size, {}
        self._top_k = self._compiled(self.encoder)
        self._fast_top_k = None if dtype is None else self._compiled(self.fast_encoder)
        self._pieces = {}
        # In a graph the tokenizer runs its TF ops on the whole batch of words at once
        # (eagerly, keras-hub tokenises word by word in Python).
        self._tokenize = tf.function(
            self.tokenizer, input_signature=[tf.TensorSpec([None], tf.string)])

    def _compiled(self, encoder):
        """`(top-K ids, z_K - z_{K+1})` at the masked position: the encoder, then the head
        at that position only (exactly the task model's computation: it chains the same
        two layers), as one compiled function."""
        split = split_last_block(encoder)
        k = min(self.k + 1, len(self.vocabulary))

        def forward(token_ids, padding_mask, segment_ids, mask_positions):
            inputs = {"token_ids": token_ids, "padding_mask": padding_mask,
                      "segment_ids": segment_ids}
            if split is None:
                hidden = sequence_output(encoder, inputs)
                hidden = tf.gather(hidden, mask_positions, batch_dims=1)  # [rows, 1, hidden]
            else:
                bottom, block = split
                below = bottom({k: v for k, v in inputs.items() if k in bottom.input})
                hidden = block_at(block, below, mask_positions, padding_mask)
            logits = self.head(tf.cast(hidden, self.head.compute_dtype),
                               tf.zeros_like(mask_positions))
            top = tf.math.top_k(logits[:, 0, :], k=k)
            return top.indices[:, : self.k], top.values[:, k - 2] - top.values[:, k - 1]

        spec = tf.TensorSpec([None, None], tf.int32)
        return tf.function(forward, input_signature=[
            spec, tf.TensorSpec([None, None], tf.bool), spec, tf.TensorSpec([None, 1], tf.int32)])

    def word_pieces(self, words):
        """WordPiece ids of each word (tokenised once per distinct word, in one call)."""
        new = sorted({w for w in words if w not in self._pieces})
        if new:
            unk = self.vocabulary.index("[UNK]") if "[UNK]" in self.vocabulary else 0
            for word, ids in zip(new, self._tokenize(tf.constant(new)).to_list()):
                self._pieces[word] = [int(i) for i in ids] or [unk]
        return [self._pieces[w] for w in words]

    def build_row(self, pieces, index):
        """The paper's input for masking word `index` of a sentence of word `pieces`.

        Returns `(token_ids, segment_ids, mask_position)`, or `None` if truncation to
        the model's maximum length drops the masked position.
        """
        flat = [p for word in pieces for p in word]
        start = 1 + sum(len(word) for word in pieces[:index])
        masked = flat.copy()
        masked[start - 1] = self.mask_id
        ids = [self.cls_id, *masked, self.sep_id, *flat, self.sep_id][: self.max_length]
        segments = ([0] * (len(flat) + 2) + [1] * (len(flat) + 1))[: self.max_length]
        return None if start >= self.max_length else (ids, segments, start)

    def top_k_ids(self, rows):
        """Top-K vocabulary ids for each `(token_ids, segment_ids, mask_position)` row;
        identical rows are computed once (and remembered, up to `cache_size` rows).

        With `dtype`, every row runs in that dtype first; the rows whose K-th and
        (K+1)-th logits are closer than `recheck_margin` are then run again in float32,
        gathered into full batches (a re-run row by row, or in the leftovers of each
        batch, would cost more than the bfloat16 pass saves)."""
        keys = [(tuple(ids), tuple(segments), position) for ids, segments, position in rows]
        todo = sorted({key for key in keys if key not in self._cache}, key=lambda r: len(r[0]))
        if len(self._cache) + len(todo) > self.cache_size:
            self._cache.clear()
        fast = self._fast_top_k is not None
        near = []
        for batch, arrays in self._batches(todo):
            top, gap = (self._fast_top_k if fast else self._top_k)(*arrays)
            self._cache.update(zip(batch, top.numpy()))
            if fast:
                near += [row for row, g in zip(batch, gap.numpy()) if g < self.recheck_margin]
        if fast:
            for batch, arrays in self._batches(near):
                self._cache.update(zip(batch, self._top_k(*arrays)[0].numpy()))
            self.rechecked[0] += len(near)
            self.rechecked[1] += len(todo)
        found = [self._cache[key] for key in keys]
        if not self.cache_size:
            self._cache.clear()
        return found

    def _batches(self, rows):
        """`(rows, (token_ids, padding_mask, segment_ids, mask_positions))`, `batch_size`
        rows at a time, padded to the longest row of each batch (rows sorted by length
        waste little)."""
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            lengths = np.array([len(r[0]) for r in batch])
            ids = np.full((len(batch), lengths.max()), self.pad_id, np.int32)
            segments = np.zeros_like(ids)
            for j, (row_ids, row_segments, _) in enumerate(batch):
                ids[j, : len(row_ids)], segments[j, : len(row_ids)] = row_ids, row_segments
            mask = np.arange(lengths.max())[None, :] < lengths[:, None]
            positions = np.array([[r[2]] for r in batch], np.int32)
            yield batch, (ids, mask, segments, positions)

    def to_words(self, top_ids):
        """Candidate words from top-K ids: `##` pieces (and special tokens) dropped."""
        return [self.vocabulary[i] for i in top_ids if self.whole_word[i]]

    def candidates(self, requests):
        """Candidate words for each `(word_pieces_of_sentence, word_index)` request."""
        rows = [self.build_row(pieces, index) for pieces, index in requests]
        valid = [i for i, row in enumerate(rows) if row is not None]
        top = self.top_k_ids([rows[i] for i in valid])
        result = [[] for _ in requests]
        for i, ids in zip(valid, top):
            result[i] = self.to_words(ids)
        return result


def with_matmul_dtype(backbone, dtype):
    """A copy of a keras backbone whose dense layers multiply in `dtype`.

    Each `Dense` / `EinsumDense` (every matrix product with a weight) gets keras'
    `mixed_<dtype>` policy: float32 weights, cast to `dtype` for the product, whose
    result the next float32 layer (dropout, layer norm, softmax) casts back. The
    residual sums and normalisations keep float32's precision, which a fully
    bfloat16 copy loses (measured: it changes the top-15 set of 13% of MiniLM's words,
    this one of 11%, before `recheck_margin`).
    """
    import keras

    copy = type(backbone).from_config(backbone.get_config())
    copy.set_weights(backbone.get_weights())
    for layer in copy._flatten_layers():
        if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense)):
            layer.dtype_policy = f"mixed_{dtype}"
    return copy


def split_last_block(backbone):
    """`(bottom, block)`: the encoder up to its last block's input, and that block.

    `None` (the whole encoder runs) unless the encoder's output is the output of a
    keras-hub `TransformerEncoder` called once on the hidden states (BERT, RoBERTa,
    DistilBERT, MiniLM ...: then `block_at` can run that block for one position).
    """
    import keras
    import keras_hub

    blocks = getattr(backbone, "transformer_layers", None)
    output = backbone.output
    output = output.get("sequence_output") if isinstance(output, dict) else output
    if not blocks or not isinstance(blocks[-1], keras_hub.layers.TransformerEncoder):
        return None
    block = blocks[-1]
    if len(block._inbound_nodes) != 1 or block.output is not output:
        return None
    return keras.Model(backbone.input, block._inbound_nodes[0].arguments.args[0]), block


def block_at(block, x, positions, padding_mask):
    """A keras-hub `TransformerEncoder`'s output at `positions` only ([rows, 1]).

    The block's own layers, in the order of its `call`, with the query restricted to
    the one position: keys and values are still every position of `x`, so the result is
    the block's full output gathered at `positions` (inference: no dropout).
    """
    x_at = tf.gather(x, positions, batch_dims=1)  # [rows, 1, hidden]
    mask = tf.cast(padding_mask, "bool")[:, None, :]  # the one query sees every key
    residual, query, keys = x_at, x_at, x
    if block.normalize_first:
        query, keys = block._self_attention_layer_norm(x_at), block._self_attention_layer_norm(x)
    h = block._self_attention_layer(query=query, value=keys, attention_mask=mask,
                                    training=False)
    h = block._self_attention_dropout(h, training=False) + residual
    if not block.normalize_first:
        h = block._self_attention_layer_norm(h)
    residual = h
    if block.normalize_first:
        h = block._feedforward_layer_norm(h)
    h = block._feedforward_output_dense(block._feedforward_intermediate_dense(h))
    h = block._feedforward_dropout(h, training=False) + residual
    if not block.normalize_first:
        h = block._feedforward_layer_norm(h)
    return h
