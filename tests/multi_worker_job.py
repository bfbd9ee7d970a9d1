"""A few distillation steps, run by test_distribute.py as one worker of a cluster
(TF_CONFIG set) or as a single process (no TF_CONFIG).

    python tests/multi_worker_job.py OUT.npz

Global batches of 8 sentences, 3 SGD steps; the chief (worker 0) writes the
student's weights, and the per-step losses, to OUT.npz.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_tinybert as kt  # noqa: E402
from keras_tinybert import testing  # noqa: E402

SENTENCES = ["a good film", "bad movie , boring", "the best story ever",
             "awful script", "charming and warm", "i hated it", "brilliant",
             "too long and too slow"] * 3


def main(out):
    strategy = kt.distribute.strategy("auto")
    with strategy.scope():
        distiller = testing.tiny_distiller(keras.optimizers.SGD(0.5))
    teacher, student = distiller.teacher, distiller.student
    ds = tf.data.Dataset.from_tensor_slices(SENTENCES).batch(8).map(teacher.preprocessor)
    history = distiller.fit(kt.distribute.shard_by_data(ds), epochs=1, verbose=0)
    print("replicas", strategy.num_replicas_in_sync, flush=True)
    if "TF_CONFIG" not in os.environ or '"index": 0' in os.environ["TF_CONFIG"]:
        np.savez(out, loss=np.array(history.history["loss"]),
                 *[w.numpy() for w in student.weights])


if __name__ == "__main__":
    main(sys.argv[1])
