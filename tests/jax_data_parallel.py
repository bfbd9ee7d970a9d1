"""Run by test_distiller.py in a fresh process: two training steps of the real
`kt.Distiller` on JAX, on one device or data-parallel over two CPU devices
(`keras.distribution.DataParallel`), to compare their weights.

    python tests/jax_data_parallel.py {one,two} OUT.npz

XLA is told to show two host devices in both modes, so that the only difference
between the runs is the distribution. Writes every student and projection weight
after training, the devices each weight lives on and the History.
"""

import json
import os
import sys

mode, out = sys.argv[1:3]
os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=2")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_tinybert import testing  # noqa: E402

SENTENCES = ["a good film", "bad movie , boring", "the best story ever",
             "awful script", "charming and warm", "i hated it", "brilliant",
             "too long and too slow"]
LABELS = np.array([1, 0, 1, 0, 1, 0, 1, 0])

assert len(jax.devices()) == 2, jax.devices()
if mode == "two":
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
distiller = testing.tiny_distiller(keras.optimizers.SGD(0.5), stage="intermediate")
batch = {k: keras.ops.convert_to_numpy(v)
         for k, v in distiller.teacher.preprocessor(SENTENCES).items()}
history = distiller.fit(batch, LABELS, batch_size=8, epochs=2, shuffle=False, verbose=0)
variables = distiller.student.weights + [
    w for layer in distiller._projections().values() for w in layer.weights]
np.savez(out, **{f"{i}:{w.path}": keras.ops.convert_to_numpy(w) for i, w in enumerate(variables)})
with open(out + ".json", "w") as f:
    json.dump({"devices": len(variables[0].value.sharding.device_set),
               "history": history.history}, f)
print("OK", mode)
