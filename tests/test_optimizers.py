"""The fused AdamW gives Keras' AdamW weights, step for step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_tinybert.optimizers import AdamW


def _variables():
    rng = np.random.default_rng(0)
    return [keras.Variable(rng.normal(size=s).astype("float32")) for s in [(6, 4), (4,)]]


def _gradients(step):
    """A dense gradient and an embedding-style one: rows 1 and 3, row 1 twice."""
    rng = np.random.default_rng(step)
    rows = tf.constant(rng.normal(size=(3, 4)).astype("float32"))
    sparse = tf.IndexedSlices(rows, tf.constant([1, 3, 1]), tf.constant([6, 4]))
    return [sparse, tf.constant(rng.normal(size=4).astype("float32"))]


def _run(optimizer, densify, steps=5):
    variables = _variables()
    for step in range(steps):
        grads = _gradients(step)
        if densify:
            grads = [tf.convert_to_tensor(g) for g in grads]
        optimizer.apply(grads, variables)
    return [v.numpy() for v in variables]


@pytest.mark.parametrize("amsgrad", [False, True])
def test_same_weights_as_keras_adamw(amsgrad):
    """Against Keras' AdamW on the same (summed) gradients, with weight decay,
    a warm-up + cosine schedule and non-default betas; 5 steps."""
    schedule = keras.optimizers.schedules.CosineDecay(
        1e-2, 10, warmup_target=3e-2, warmup_steps=3)
    kwargs = dict(weight_decay=0.01, beta_1=0.8, epsilon=1e-6, amsgrad=amsgrad)
    ours = _run(AdamW(schedule, **kwargs), densify=False)
    reference = _run(keras.optimizers.AdamW(schedule, **kwargs), densify=True)
    for got, want, before in zip(ours, reference, _variables()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert np.abs(got - before).max() > 1e-2  # the steps did move the weights


def test_repeated_rows_use_the_square_of_the_summed_gradient():
    """A token seen twice in a batch: Adam's v takes (g₁ + g₂)², as PyTorch's and
    Keras' dense update do. (Keras' own update on IndexedSlices squares each
    slice before summing, g₁² + g₂², which is not Adam's v.)"""
    optimizer = AdamW(0.1, weight_decay=0.0)
    variable = keras.Variable(np.zeros((2, 1), "float32"))
    grad = tf.IndexedSlices(tf.constant([[1.0], [2.0]]), tf.constant([0, 0]),
                            tf.constant([2, 1]))
    optimizer.apply([grad], [variable])
    velocity = optimizer._velocities[0].numpy()
    np.testing.assert_allclose(velocity[0, 0], (1 - 0.999) * 9.0, rtol=1e-4)


def test_config_round_trip():
    optimizer = AdamW(3e-4, weight_decay=0.02, beta_2=0.98)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(optimizer))
    assert isinstance(restored, AdamW)
    assert restored.get_config() == optimizer.get_config()
