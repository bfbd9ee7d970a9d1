"""The fused AdamW gives Keras' AdamW weights, step for step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_tinybert.optimizers import AdamW

# kt.optimizers.AdamW's fused TensorFlow update; on other backends it is Keras' own.
pytestmark = pytest.mark.tensorflow_only


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


MIRRORED_JOB = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
import keras_tinybert as kt

def train(strategy):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        tokens = keras.Input((5,), dtype="int32")
        x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 8)(tokens))
        model = keras.Model(tokens, keras.layers.Dense(3)(x))
        model.compile(optimizer=kt.optimizers.AdamW(1e-2),
                      loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    data = tf.data.Dataset.from_tensor_slices(
        (rng.integers(0, 50, (64, 5)), rng.integers(0, 3, 64))).batch(16)
    before = [w.numpy() for w in model.weights]
    model.fit(data, epochs=2, verbose=0)
    after = [w.numpy() for w in model.weights]
    print("MOVED", min(np.abs(a - b).max() for a, b in zip(after, before)))
    return after

one = train(tf.distribute.get_strategy())
two = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
print("DIFF", max(np.abs(a - b).max() for a, b in zip(one, two)))
"""


def test_two_mirrored_replicas_take_one_replicas_steps():
    """Under MirroredStrategy (2 CPU replicas) the fused update gives the weights
    of a single replica on the same global batches (8 steps)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", MIRRORED_JOB], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    diff = float(out.stdout.split("DIFF")[-1])
    moved = float(out.stdout.split("MOVED")[-1].split()[0])
    assert diff < 1e-6 and moved > 1e-3
