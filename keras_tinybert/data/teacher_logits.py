"""The teacher's logits, computed once for the prediction-layer stage.

TinyBERT's task distillation ends with prediction-layer distillation (§3.2, Eq. 10):
the student's logits z^S are fitted to the teacher's z^T on the same (augmented)
examples for several epochs. The teacher is frozen and runs in inference mode, so z^T
of an example never changes: running the teacher again every epoch repeats the same
work. `with_teacher_logits` runs it once and attaches z^T to every example; the
distiller then skips the teacher's forward pass for those batches.

    raw = kt.data.load_glue("sst2", "train", data_dir=...)
    raw = kt.data.with_teacher_logits(raw, teacher, sequence_length=64)
    train = kt.data.to_model_inputs(raw, teacher, 32, bucket_boundaries=[16, 32, 64],
                                    shuffle_buffer=10_000)   # x["teacher_logits"] added
    kt.Distiller(teacher, student, stage="prediction").fit(train, epochs=3)
"""

import numpy as np
import tensorflow as tf

from keras_tinybert.data.inputs import (
    batch_by_length, bucket_boundaries, tokenized, with_sequence_length)
from keras_tinybert.inference import inference_forward


def _length_bucketed(dataset, preprocessor, batch_size):
    """`(x, indices)` batches of similar-length examples, each padded to its longest.

    Tokenised and bucketed as training batches are (`tokenized`, `batch_by_length`,
    the same bucket rule); `indices` say where each row goes.
    """
    indexed = dataset.enumerate().map(lambda i, example: (example[0], i))
    return batch_by_length(tokenized(indexed, preprocessor), preprocessor, batch_size,
                           bucket_boundaries(preprocessor.sequence_length)).prefetch(2)


def teacher_logits(dataset, teacher, *, batch_size=64, sequence_length=None):
    """z^T for every `(texts, label)` example of `dataset`, in order: `[N, classes]`.

    Raises ValueError on an empty dataset (nothing to distil).
    """
    preprocessor = with_sequence_length(teacher, sequence_length)
    batches = _length_bucketed(dataset, preprocessor, batch_size)
    signature = {k: tf.TensorSpec([None, None], spec.dtype)
                 for k, spec in batches.element_spec[0].items()}
    # TensorFlow: one trace for every batch length (a plain tf.function would
    # retrace per length); JAX: one XLA compile per bucket length.
    forward = inference_forward(teacher, signature)
    indices, logits = [], []
    for x, index in batches:
        indices.append(index.numpy())
        logits.append(forward(x).astype(np.float32))
    if not logits:
        raise ValueError("The dataset is empty: there is nothing to compute the "
                         "teacher's logits on. Check the training file or split.")
    result = np.empty((sum(len(i) for i in indices), logits[0].shape[-1]), np.float32)
    result[np.concatenate(indices)] = np.concatenate(logits)
    return result


def with_teacher_logits(dataset, teacher, *, batch_size=64, sequence_length=None):
    """`(texts, label)` → `(texts, label, teacher_logits)`, the teacher run once.

    The result can be shuffled, batched and bucketed freely (`to_model_inputs`):
    each example carries its own logits. Pass the same `sequence_length` as for
    training, so that the teacher sees the same (truncated) tokens.
    """
    logits = teacher_logits(dataset, teacher, batch_size=batch_size,
                            sequence_length=sequence_length)
    cached = tf.data.Dataset.from_tensor_slices(logits)
    return tf.data.Dataset.zip((dataset, cached)).map(
        lambda example, z: (*example, z)
    )
