"""A general-distillation corpus: plain text streamed into packed token sequences.

For the `"general"` stage (§3.3, general distillation on a large unlabelled corpus).
Files are read line by line by `tf.data.TextLineDataset` (never the whole corpus in
memory); lines are split into sentences, tokenised in batches by the teacher's keras-hub
tokenizer, and consecutive sentences are packed greedily into sequences of at most
`max_seq_len` tokens (`[CLS] s1 s2 ... [SEP]`, or the tokenizer's own start and end
tokens, `<s> ... </s>` for RoBERTa); a sentence longer than a sequence is cut into
pieces. Sequences are shuffled in a buffer and batched, with the input keys of the
teacher's preprocessor (`keras_tinybert.layout`).

WikiText's layout is understood: blank lines and headings (`= = Title = =`) are dropped.
A well-known corpus can be named instead of given as files (`downloads.CORPORA`:
"wikitext-2", "wikitext-103"); it is downloaded once.
"""

import glob
import pathlib

import numpy as np
import tensorflow as tf

from keras_tinybert.data.downloads import CORPORA, corpus_files
from keras_tinybert.data.inputs import packed_keys
from keras_tinybert.layout import PADDING_MASK, SEGMENT_IDS, TOKEN_IDS, TOKEN_KEYS

# A sentence ends after ., ! or ? followed by a space (WikiText: "Sea . It is ...").
_SENTENCE_END = r"([.!?]) +"
_HEADING = r"\s*=.*=\s*"


def _expand(files):
    """Paths from a path, a glob, a directory (its *.txt), a corpus name, or a list."""
    if isinstance(files, (str, pathlib.Path)):
        files = [files]
    paths = []
    for item in files:
        path = pathlib.Path(item)
        if path.is_dir():
            paths += sorted(str(p) for p in path.glob("*.txt"))
        elif str(item) in CORPORA and not glob.glob(str(path)):  # a name, not a file
            paths += corpus_files(str(item))
        else:
            paths += sorted(glob.glob(str(path))) or [str(path)]
    missing = [p for p in paths if not pathlib.Path(p).exists()]
    if not paths or missing:
        raise FileNotFoundError(
            f"No corpus files at {missing or files}. Give text files, globs or folders "
            f"of *.txt, or a corpus name: {', '.join(CORPORA)}.")
    return paths


def sentences(files, shuffle_files=False, seed=None):
    """A `tf.data.Dataset` of sentences (strings) from text files, streamed."""
    files = _expand(files)
    paths = tf.data.Dataset.from_tensor_slices(files)
    if shuffle_files:
        paths = paths.shuffle(len(files), seed=seed)
    lines = paths.flat_map(tf.data.TextLineDataset)
    lines = lines.map(tf.strings.strip).filter(
        lambda line: tf.logical_and(
            tf.strings.length(line) > 0,
            tf.logical_not(tf.strings.regex_full_match(line, _HEADING)),
        )
    )
    split = lines.map(
        lambda line: tf.strings.split(tf.strings.regex_replace(line, _SENTENCE_END, "\\1\n"), "\n")
    )
    return split.unbatch().filter(lambda s: tf.strings.length(tf.strings.strip(s)) > 0)


class _Packer:
    """Greedy packing of token-id sentences into `[CLS] ... [SEP]` sequences
    (the tokenizer's start and end tokens)."""

    def __init__(self, max_seq_len, start_id, end_id, pad_id):
        self.budget = max_seq_len - 2
        self.max_seq_len, self.start_id, self.end_id, self.pad_id = (
            max_seq_len, start_id, end_id, pad_id)

    def _emit(self, ids):
        row = np.full(self.max_seq_len, self.pad_id, np.int32)
        row[: len(ids) + 2] = [self.start_id, *ids, self.end_id]
        return row

    def pack(self, sentence_ids):
        buffer = []
        for ids in sentence_ids:
            ids = list(ids)
            if buffer and len(buffer) + len(ids) > self.budget:
                yield self._emit(buffer)
                buffer = []
            while len(ids) > self.budget:
                yield self._emit(ids[: self.budget])
                ids = ids[self.budget :]
            buffer += ids
        if buffer:
            yield self._emit(buffer)


def _inputs(token_ids, pad_id, keys):
    """The model inputs `keys` of packed single-segment `token_ids`."""
    inputs = {
        TOKEN_IDS: token_ids,
        PADDING_MASK: token_ids != pad_id,
        SEGMENT_IDS: tf.zeros_like(token_ids),
    }
    return {key: inputs[key] for key in keys}


def _tokenizer_and_keys(tokenizer):
    """`(tokenizer, input keys)` of a tokenizer, a preprocessor or a model."""
    preprocessor = getattr(tokenizer, "preprocessor", None)
    preprocessor = tokenizer if preprocessor is None else preprocessor
    if hasattr(preprocessor, "tokenizer"):
        return preprocessor.tokenizer, packed_keys(preprocessor)
    if not hasattr(tokenizer, "start_token_id"):
        raise ValueError(
            f"Need the teacher's keras-hub tokenizer, its preprocessor or a model "
            f"carrying one; got {type(tokenizer).__name__}.")
    return tokenizer, TOKEN_KEYS


def text_corpus(
    files,
    tokenizer,
    max_seq_len=128,
    batch_size=32,
    *,
    shuffle_buffer=10_000,
    seed=None,
    repeat=False,
    drop_remainder=False,
):
    """Batches of packed sequences for general distillation, streamed from `files`.

    Args:
        files: a text file, a glob, a directory of `*.txt`, a corpus name
            ("wikitext-2", "wikitext-103": downloaded once), or a list of them.
        tokenizer: the teacher's keras-hub preprocessor or the model carrying it (the
            batches then have the keys it packs), or a bare tokenizer (BERT's keys).
        max_seq_len: tokens per sequence, `[CLS]` and `[SEP]` included.
        batch_size: sequences per batch.
        shuffle_buffer: sequences shuffled in a buffer of this size (0: no shuffle).
        seed: shuffle seed (file order and sequences).
        repeat: loop over the corpus forever (for step-based training).
        drop_remainder: static batch size.

    Yields dicts `{"token_ids", "padding_mask"[, "segment_ids"]}` of
    `[batch, max_seq_len]` (no labels: general distillation matches the teacher's
    internals only).
    """
    tokenizer, keys = _tokenizer_and_keys(tokenizer)
    if max_seq_len < 3:
        raise ValueError(f"max_seq_len must leave room for [CLS] and [SEP], got {max_seq_len}.")
    packer = _Packer(max_seq_len, tokenizer.start_token_id, tokenizer.end_token_id,
                     tokenizer.pad_token_id)
    tokenized = (
        sentences(files, shuffle_files=shuffle_buffer > 0, seed=seed)
        .batch(256)
        .map(tokenizer, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
    )

    def generate():
        yield from packer.pack(ids for ids in tokenized.as_numpy_iterator())

    ds = tf.data.Dataset.from_generator(
        generate, output_signature=tf.TensorSpec([max_seq_len], tf.int32)
    )
    if repeat:
        ds = ds.repeat()
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder).map(
        lambda ids: _inputs(ids, packer.pad_id, keys))
    return ds.prefetch(tf.data.AUTOTUNE)
