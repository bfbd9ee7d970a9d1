"""Tokenise and pack text with the teacher's keras-hub preprocessor, in `tf.data`.

Two modes:

- fixed length (`bucket_boundaries=None`): every batch is `[batch, sequence_length]`,
  what TFLite, TPUs and `drop_remainder=True` training want;
- dynamic padding with length bucketing: examples are grouped by length
  (`tf.data.Dataset.bucket_by_sequence_length`) and each batch is padded only to its
  longest member, so SST-2's short sentences don't pay for `sequence_length`.

Both yield `(x, y)` with `x = {"token_ids", "padding_mask", "segment_ids"}`, the inputs
of every keras-hub BERT-family backbone.
"""

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
TEACHER_LOGITS = "teacher_logits"
TOKEN_KEYS = ("token_ids", "padding_mask", "segment_ids")


def _preprocessor_of(preprocessor_or_model):
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
    preprocessor = _preprocessor_of(preprocessor)
    if sequence_length is None or sequence_length == preprocessor.sequence_length:
        return preprocessor
    return type(preprocessor)(
        tokenizer=preprocessor.tokenizer, sequence_length=sequence_length
    )


def _pack(preprocessor, texts):
    """Tokenise and pack `texts` (a tuple of 1 or 2 string tensors).

    `x=` is passed by keyword: Keras layers read a positional 2-tuple as `(x, y)`, which
    would silently turn a sentence pair into a sentence and a label.
    """
    return preprocessor(x=texts)


def _inputs(preprocessor, texts, label, teacher_logits=None):
    """`(x, y)` for the model; cached teacher logits ride along in `x`."""
    x = _pack(preprocessor, texts)
    if teacher_logits is not None:
        x = {**x, TEACHER_LOGITS: teacher_logits}
    return x, label


def _trim(x):
    """Drop the trailing padding of one packed example."""
    length = tf.reduce_sum(tf.cast(x["padding_mask"], tf.int32))
    return {key: value[:length] if key in TOKEN_KEYS else value for key, value in x.items()}


def padding_values(preprocessor, keys=TOKEN_KEYS):
    """What pads each packed input (`bucket_by_sequence_length`), for `keys` present."""
    values = {"token_ids": tf.constant(preprocessor.tokenizer.pad_token_id, tf.int32),
              "padding_mask": False, "segment_ids": tf.constant(0, tf.int32)}
    return {key: values[key] for key in keys if key in values}


def _trim_inputs(x, y):
    return _trim(x), y


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
            one (the teacher): its tokenizer and packer are used.
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
            lambda *e: _inputs(preprocessor, *e), num_parallel_calls=AUTOTUNE
        ).prefetch(AUTOTUNE)
    boundaries = sorted(int(b) for b in bucket_boundaries)
    if not boundaries or boundaries[0] < 1:
        raise ValueError(f"bucket_boundaries must be positive lengths, got {bucket_boundaries}.")
    dataset = dataset.map(
        lambda *e: _trim_inputs(*_inputs(preprocessor, *e)), num_parallel_calls=AUTOTUNE
    )
    padding = padding_values(preprocessor, dataset.element_spec[0])
    if TEACHER_LOGITS in dataset.element_spec[0]:
        padding[TEACHER_LOGITS] = tf.constant(0.0, dataset.element_spec[0][TEACHER_LOGITS].dtype)
    return dataset.bucket_by_sequence_length(
        element_length_func=lambda x, y: tf.shape(x["token_ids"])[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=(padding, None),
        drop_remainder=drop_remainder,
    ).prefetch(AUTOTUNE)
