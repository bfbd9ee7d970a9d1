"""A small distillation run for test_resume.py: resumable, deterministic, killable.

    python tests/resume_job.py BACKUP_DIR OUT.npz [--sleep SECONDS]

Trains a tiny student (dropout 0.1, so the RNG state matters) for 3 epochs of 8
steps with `kt.resume.fit_resumable`, backing up every 3 steps, then saves the
student's weights to OUT.npz. `--sleep` slows each step so the test can kill it.
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_tinybert import testing  # noqa: E402
from keras_tinybert.resume import fit_resumable  # noqa: E402

SENTENCES = ["a good film", "bad movie , boring", "the best story ever",
             "awful script", "charming and warm", "i hated it", "brilliant",
             "too long and too slow"] * 2


class Slow(keras.callbacks.Callback):
    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("backup_dir")
    parser.add_argument("out")
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    distiller = testing.tiny_distiller(keras.optimizers.Adam(1e-3), student_dropout=0.1)
    teacher, student = distiller.teacher, distiller.student
    ds = tf.data.Dataset.from_tensor_slices(SENTENCES).shuffle(16, seed=0)
    ds = ds.batch(2).map(teacher.preprocessor)
    history = fit_resumable(distiller, ds, epochs=3, backup_dir=args.backup_dir,
                            save_freq=3, callbacks=[Slow(args.sleep)], verbose=0)
    print("resumed_from_step", history["resumed_from_step"], flush=True)
    print("steps", int(distiller.optimizer.iterations.numpy()), flush=True)
    np.savez(args.out, *[w.numpy() for w in student.weights])


if __name__ == "__main__":
    main()
