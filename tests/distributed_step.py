"""Run by test_distiller.py in a fresh process (logical devices must be set first).

One SGD step of the Distiller on the same global batch of 8 under the default
strategy and under MirroredStrategy with 2 replicas (4 examples each). The gradient
is linear in the loss, so with the loss divided by `num_replicas_in_sync` the two
updates agree up to float32 summation order: each weight's gradient sums ~10²–10³
products, so relative differences of ~1e-5 are round-off, while a missing division
doubles the update (a relative difference of 1.0). We assert rtol=1e-3, atol=1e-7 on
the update, and that the update is far from zero.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_tinybert import testing  # noqa: E402

SENTENCES = ["a good film", "bad movie , boring", "the best story ever",
             "awful script", "charming and warm", "i hated it", "brilliant",
             "too long and too slow"]


def one_step(strategy):
    with strategy.scope():
        distiller = testing.tiny_distiller(keras.optimizers.SGD(0.5))
    teacher = distiller.teacher
    before = [w.numpy().copy() for w in distiller.trainable_weights]
    ds = tf.data.Dataset.from_tensor_slices(SENTENCES).batch(8)
    ds = ds.map(teacher.preprocessor)
    distiller.fit(ds, epochs=1, verbose=0)
    return [w.numpy() - b for w, b in zip(distiller.trainable_weights, before)]


single = one_step(tf.distribute.get_strategy())
mirrored_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert mirrored_strategy.num_replicas_in_sync == 2
mirrored = one_step(mirrored_strategy)
total = sum(float(np.abs(d).sum()) for d in single)
assert total > 1e-2, total
for a, b in zip(single, mirrored):
    np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-7)
print("OK", total)
