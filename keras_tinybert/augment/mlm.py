"""Masked-LM candidates for single-piece words (§3.1), batched across words and sentences.

For the word at position i of a sentence whose WordPieces are `w_1 .. w_n`, the paper's
code builds one masked-LM input per word,

    [CLS] w_1 .. [MASK] .. w_n [SEP] w_1 .. w_n [SEP]      (segments 0 ... 0 1 ... 1)

(the masked sentence, then the original as the second segment) and keeps the top-K
predictions at the mask that are not `##` continuations. It runs the model once per word.
Here all (sentence, word) rows of a batch of sentences are built at once, sorted by
length, and run `batch_size` rows per call through one compiled function that returns
only the top-K ids (the masked-LM head is evaluated at the masked position only). Each
row is the same input as the paper's, so the candidates are the same.

Any keras-hub `MaskedLM` with a WordPiece tokenizer works (`BertMaskedLM`, ...).
"""

import numpy as np
import tensorflow as tf

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def load_masked_lm(preset):
    """A keras-hub `MaskedLM` (with its preprocessor) from a preset name or folder."""
    import keras_hub

    try:
        return keras_hub.models.MaskedLM.from_preset(preset)
    except Exception as error:  # keras-hub raises several types for a bad preset
        raise ValueError(
            f"Could not load a keras-hub masked LM from {preset!r} ({error}). Give a "
            "keras-hub preset name (e.g. 'bert_base_en_uncased', needs network) or a "
            "folder saved with `masked_lm.save_to_preset(dir)`."
        ) from error


class MaskedLMCandidates:
    """Top-K whole-word masked-LM predictions for many (sentence, word) pairs at once.

    Args:
        masked_lm: a keras-hub `MaskedLM` with a preprocessor (for its tokenizer).
        k: the K of the paper (15): predictions kept before dropping `##` pieces.
        batch_size: rows per masked-LM call.
        drop_special: also drop `[UNK]`, `[CLS]`, ... (the paper's code keeps them, but a
            "[UNK]" written into a sentence is never a useful replacement).

    Raises:
        ValueError: the tokenizer's vocabulary does not match the model's embedding.
    """

    def __init__(self, masked_lm, k=15, batch_size=64, drop_special=True):
        if masked_lm.preprocessor is None:
            raise ValueError("The masked LM needs a preprocessor (for its tokenizer).")
        self.model, self.k, self.batch_size = masked_lm, k, batch_size
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
        spec = tf.TensorSpec([None, None], tf.int32)
        self._top_k = tf.function(
            self._forward,
            input_signature=[spec, tf.TensorSpec([None, None], tf.bool), spec,
                             tf.TensorSpec([None, 1], tf.int32)],
        )
        self._pieces = {}
        # In a graph the tokenizer runs its TF ops on the whole batch of words at once
        # (eagerly, keras-hub tokenises word by word in Python).
        self._tokenize = tf.function(
            self.tokenizer, input_signature=[tf.TensorSpec([None], tf.string)])

    def _forward(self, token_ids, padding_mask, segment_ids, mask_positions):
        inputs = {"token_ids": token_ids, "padding_mask": padding_mask,
                  "segment_ids": segment_ids, "mask_positions": mask_positions}
        names = self.model.input.keys() if isinstance(self.model.input, dict) else inputs
        # Models without segment embeddings (DistilBERT) take no segment_ids.
        logits = self.model({k: v for k, v in inputs.items() if k in names}, training=False)
        return tf.math.top_k(logits[:, 0, :], k=self.k).indices

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
        """Top-K vocabulary ids for each `(token_ids, segment_ids, mask_position)` row."""
        out = [None] * len(rows)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
        for start in range(0, len(order), self.batch_size):
            batch = [rows[i] for i in order[start : start + self.batch_size]]
            length = min(self.max_length, -(-max(len(r[0]) for r in batch) // 8) * 8)
            ids = np.full((len(batch), length), self.pad_id, np.int32)
            segments = np.zeros((len(batch), length), np.int32)
            for j, (row_ids, row_segments, _) in enumerate(batch):
                ids[j, : len(row_ids)], segments[j, : len(row_ids)] = row_ids, row_segments
            positions = np.array([[r[2]] for r in batch], np.int32)
            lengths = np.array([len(r[0]) for r in batch])
            mask = np.arange(length)[None, :] < lengths[:, None]
            top = self._top_k(ids, mask, segments, positions).numpy()
            for i, row_top in zip(order[start : start + self.batch_size], top):
                out[i] = row_top
        return out

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
