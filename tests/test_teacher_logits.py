"""The prediction stage with the teacher's logits computed once (kt.data.with_teacher_logits)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_tinybert as kt
from keras_tinybert import data
from keras_tinybert.testing import tiny_classifier, vary_weights

SENTENCES = ["a good film", "bad plot and worse acting", "the music was really good",
             "i did not like it at all , not one bit", "great", "boring",
             "an honest , moving story", "it was fine i guess"] * 3
LABELS = [1, 0, 1, 0, 1, 0, 1, 1] * 3


def raw_dataset():
    return tf.data.Dataset.from_tensor_slices(((SENTENCES,), LABELS))


def models():
    teacher = tiny_classifier(num_layers=2, hidden_dim=32, seed=1)
    vary_weights(teacher, SENTENCES)
    student = kt.models.student_like(teacher, num_layers=1, hidden_dim=16,
                                     intermediate_dim=32)
    return teacher, student


def test_cached_logits_are_the_teachers_in_order():
    teacher, _ = models()
    cached = data.teacher_logits(raw_dataset(), teacher, batch_size=5, sequence_length=16)
    expected = np.asarray(teacher.predict(SENTENCES, verbose=0))
    assert cached.shape == (len(SENTENCES), 2)
    assert np.ptp(expected[:, 1]) > 1e-3  # input-dependent, so order matters
    np.testing.assert_allclose(cached, expected, atol=1e-5)


def test_logits_ride_along_through_shuffle_and_buckets():
    teacher, _ = models()
    raw = data.with_teacher_logits(raw_dataset(), teacher, sequence_length=16)
    batches = data.to_model_inputs(raw, teacher, 4, sequence_length=16,
                                   bucket_boundaries=[4, 8], shuffle_buffer=100, seed=3)
    forward = tf.function(lambda x: teacher(x, training=False))
    seen = 0
    for x, _ in batches:
        cached = x.pop("teacher_logits")
        np.testing.assert_allclose(cached, forward(x), atol=1e-5)
        seen += len(cached)
    assert seen == len(SENTENCES)


class Counting:
    """Taps that count their (traced) calls."""

    def __init__(self, taps, calls):
        self.taps, self.calls = taps, calls

    def __call__(self, *args, **kwargs):
        self.calls.append(1)
        return self.taps(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.taps, name)


def fit_prediction(cache):
    keras.utils.set_random_seed(0)
    teacher, student = models()
    raw = raw_dataset()
    if cache:
        raw = data.with_teacher_logits(raw, teacher, sequence_length=16)
    train = data.to_model_inputs(raw, teacher, 8, sequence_length=16)
    distiller = kt.Distiller(teacher, student, stage="prediction")
    distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    calls = []
    distiller.teacher_taps = Counting(distiller.teacher_taps, calls)
    history = distiller.fit(train, epochs=2, verbose=0)
    return history.history, [w.numpy() for w in student.trainable_weights], calls


def test_prediction_stage_with_cached_logits_trains_the_same_without_the_teacher():
    plain, plain_weights, plain_calls = fit_prediction(cache=False)
    cached, cached_weights, cached_calls = fit_prediction(cache=True)
    assert plain_calls and not cached_calls  # traced teacher calls: none with the cache
    np.testing.assert_allclose(cached["prediction_loss"], plain["prediction_loss"], rtol=1e-4)
    assert plain["prediction_loss"][1] < plain["prediction_loss"][0]
    for a, b in zip(cached_weights, plain_weights):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_empty_dataset_is_a_clear_error():
    teacher, _ = models()
    empty = raw_dataset().take(0)
    with pytest.raises(ValueError, match="empty"):
        data.teacher_logits(empty, teacher)
