"""Tokenise, pack and batch text for a keras-hub model, in `tf.data`.

`to_model_inputs` turns `(texts, label[, teacher_logits])` examples (`keras_tinybert
.layout`) into `(x, y)` batches, in one of two modes:

- fixed length (`bucket_boundaries=None`): every batch is `[batch, sequence_length]`,
  what TFLite, TPUs and `drop_remainder=True` training want;
- dynamic padding with length buckets: examples are grouped by length
  (`tf.data.Dataset.bucket_by_sequence_length`) and each batch is padded only to its
  longest member, so SST-2's short sentences don't pay for `sequence_length`.

`x` holds the keys the model's own preprocessor packs (BERT: `token_ids`,
`padding_mask`, `segment_ids`; RoBERTa-style: no `segment_ids`), plus the cached
teacher logits when the examples carry them. `tokenized` and `batch_by_length` are the
one tokenising and the one bucketing step, shared with the teacher-logit cache
(`teacher_logits.py`); `bucket_boundaries` is the one bucket rule.
"""

import tensorflow as tf

from keras_tinybert.layout import PADDING_MASK, TEACHER_LOGITS, TOKEN_IDS
from keras_tinybert.layout import TOKEN_KEYS  # noqa: F401  (kt.data.inputs.TOKEN_KEYS, older code)

AUTOTUNE = tf.data.AUTOTUNE
# Dynamic padding: batches are formed among examples of similar length.
BUCKET_LENGTHS = (16, 32, 64)
# Examples per tokenizer call (one call per example is several times slower).
TOKENIZE_BATCH = 1024


def bucket_boundaries(sequence_length):
    """The length buckets below `sequence_length`: the one bucket rule."""
    return [b for b in BUCKET_LENGTHS if b < sequence_length]


def preprocessor_of(preprocessor_or_model):
    """A model's attached preprocessor, or the preprocessor itself."""
    preprocessor = getattr(preprocessor_or_model, "preprocessor", None)
    if preprocessor is None and hasattr(preprocessor_or_model, "tokenizer"):
        preprocessor = preprocessor_or_model
    if preprocessor is None:
        raise ValueError(
            "Need a keras-hub preprocessor (e.g. teacher.preprocessor) or a model with "
            "one attached; this model has none. Pass preprocessor=..."
        )
    return preprocessor


def with_sequence_length(preprocessor, sequence_length):
    """A preprocessor like `preprocessor` (same tokenizer) packing to `sequence_length`.

    The teacher's own preprocessor is left untouched.
    """
    preprocessor = preprocessor_of(preprocessor)
    if sequence_length is None or sequence_length == preprocessor.sequence_length:
        return preprocessor
    return type(preprocessor)(
        tokenizer=preprocessor.tokenizer, sequence_length=sequence_length
    )


def packed_keys(preprocessor):
    """The keys `preprocessor` (or a model's) packs, in its output order.

    Read from the preprocessor's output on one sentence: BERT gives `token_ids`,
    `padding_mask`, `segment_ids`; RoBERTa-style preprocessors drop `segment_ids`.
    """
    return tuple(preprocessor_of(preprocessor)(x=tf.constant(["a"])))


def _pack(preprocessor, texts):
    """Tokenise and pack `texts` (a tuple of 1 or 2 string tensors).

    `x=` is passed by keyword: Keras layers read a positional 2-tuple as `(x, y)`, which
    would silently turn a sentence pair into a sentence and a label. Every batch
    carries `padding_mask` (the losses need it): where a preprocessor packs none, it
    is `token_ids != pad id`, which the model itself ignores.
    """
    x = preprocessor(x=texts)
    if PADDING_MASK not in x:  # F-Net, RoFormerV2: the mask is read off the pad id
        x = {**x, PADDING_MASK: x[TOKEN_IDS] != preprocessor.tokenizer.pad_token_id}
    return x


def _trim(x):
    """Drop the trailing padding of one packed example (every packed key)."""
    length = tf.reduce_sum(tf.cast(x[PADDING_MASK], tf.int32))
    return {key: value[:length] for key, value in x.items()}


def tokenized(dataset, preprocessor):
    """`(texts, *rest)` examples → `(x, *rest)`, `x` packed and trimmed to its length.

    Tokenised `TOKENIZE_BATCH` examples per call, in order; `rest` passes through.
    """
    packed = dataset.batch(TOKENIZE_BATCH).map(
        lambda texts, *rest: (_pack(preprocessor, texts), *rest),
        num_parallel_calls=AUTOTUNE).unbatch()
    return packed.map(lambda x, *rest: (_trim(x), *rest), num_parallel_calls=AUTOTUNE)


def batch_by_length(examples, preprocessor, batch_size, boundaries, drop_remainder=False):
    """Batches of `(x, other)` examples of similar length, each padded to its longest.

    `x` is a trimmed packed dict (`tokenized`); `other` (a label, an index) is batched
    as is. Token ids are padded with the tokenizer's pad id, every other key of `x`
    with zeros (False for the mask). No boundaries (a `sequence_length` of 16 or
    less): one bucket, each batch still padded only to its longest.
    """
    boundaries = sorted(int(b) for b in boundaries)
    if boundaries and boundaries[0] < 1:
        raise ValueError(f"bucket_boundaries must be positive lengths, got {boundaries}.")
    pad_id = preprocessor.tokenizer.pad_token_id
    padding = {key: tf.constant(pad_id, spec.dtype) if key == TOKEN_IDS
               else tf.zeros([], spec.dtype)
               for key, spec in examples.element_spec[0].items()}
    return examples.bucket_by_sequence_length(
        element_length_func=lambda x, other: tf.shape(x[TOKEN_IDS])[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=(padding, None),
        drop_remainder=drop_remainder,
    )


def _model_inputs(x, label, *teacher_logits):
    """`(x, y)` for the model; cached teacher logits ride along in `x`."""
    if teacher_logits:
        x = {**x, TEACHER_LOGITS: teacher_logits[0]}
    return x, label


def to_model_inputs(
    dataset,
    preprocessor,
    batch_size=32,
    *,
    sequence_length=None,
    bucket_boundaries=None,
    shuffle_buffer=None,
    seed=None,
    drop_remainder=False,
):
    """Batched model inputs `(x, y)` from a `(texts, label)` dataset (see `load_glue`).

    A `(texts, label, teacher_logits)` dataset (`with_teacher_logits`) gives the same
    batches with `x["teacher_logits"]` added.

    Args:
        dataset: `tf.data.Dataset` of `(texts, label)`; `texts` a tuple of strings.
        preprocessor: a keras-hub text classifier preprocessor, or a model carrying
            one (the teacher): its tokenizer and packer are used, and `x` has the
            keys it packs.
        batch_size: examples per batch.
        sequence_length: maximum (and, in fixed mode, exact) tokens per example;
            default the preprocessor's. Longer inputs are truncated.
        bucket_boundaries: e.g. `[16, 32, 64]` for dynamic padding: batches are formed
            within a length bucket and padded to their longest example. `None` gives
            fixed-length batches of `sequence_length`.
        shuffle_buffer: shuffle examples (before batching) with this buffer.
        seed: shuffle seed.
        drop_remainder: drop incomplete batches (static batch size, for TPUs).
    """
    preprocessor = with_sequence_length(preprocessor, sequence_length)
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    if bucket_boundaries is None:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        return dataset.map(
            lambda texts, *rest: _model_inputs(_pack(preprocessor, texts), *rest),
            num_parallel_calls=AUTOTUNE,
        ).prefetch(AUTOTUNE)
    examples = tokenized(dataset, preprocessor).map(_model_inputs,
                                                    num_parallel_calls=AUTOTUNE)
    return batch_by_length(examples, preprocessor, batch_size, bucket_boundaries,
                           drop_remainder).prefetch(AUTOTUNE)
