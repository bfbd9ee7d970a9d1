"""Run by test_distiller.py in a fresh process: the real `kt.Distiller` (real
`kt.Taps`) under one Keras backend, to compare JAX with TensorFlow.

    python tests/jax_distiller_step.py {tensorflow,jax} DIR [STAGE ...]

For each stage (default: general, intermediate, joint and prediction) builds
`testing.tiny_distiller`, loads DIR/STAGE.weights.h5 (saved by the TensorFlow
side, so both backends start from the same numbers), evaluates one fixed batch,
fits two steps with SGD and a weight decay (which would shrink the student's
unused pooler and head if the stage updated them), evaluates again and writes
DIR/BACKEND-STAGE.json (losses before/after, the History,
the trained weights, the untrained student weights that changed), then the
teacher-logit cache of the same sentences to DIR/BACKEND-teacher_logits.npy. and .npz (every
student and projection weight after training). The last stage's student is saved
as DIR/BACKEND-student.keras with its logits on the batch, for export under TensorFlow.
"""

import json
import os
import sys

backend, out_dir = sys.argv[1:3]
stages = sys.argv[3:] or ["general", "intermediate", "joint", "prediction"]
os.environ["KERAS_BACKEND"] = backend

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tensorflow as tf  # noqa: E402  (tf.data: the input pipeline on any backend)

from keras_tinybert import data, testing  # noqa: E402

SENTENCES = ["a good film", "bad movie , boring", "the best story ever",
             "awful script", "charming and warm", "i hated it", "brilliant",
             "too long and too slow"]
LABELS = np.array([1, 0, 1, 0, 1, 0, 1, 0])

for stage in stages:
    optimizer = keras.optimizers.SGD(0.5, weight_decay=0.1)
    distiller = testing.tiny_distiller(optimizer, stage=stage)
    weights_path = os.path.join(out_dir, f"{stage}.weights.h5")
    if backend == "tensorflow" and not os.path.exists(weights_path):
        distiller.save_weights(weights_path)
    distiller.load_weights(weights_path)
    batch = distiller.teacher.preprocessor(SENTENCES)
    batch = {k: keras.ops.convert_to_numpy(v) for k, v in batch.items()}

    def evaluate():
        return distiller.evaluate(batch, LABELS, batch_size=8, return_dict=True,
                                  verbose=0)

    before = evaluate()
    start = {w.path: keras.ops.convert_to_numpy(w) for w in distiller.student.weights}
    history = distiller.fit(batch, LABELS, batch_size=8, epochs=2, shuffle=False,
                            verbose=0).history
    after = evaluate()
    trained = {id(w) for w in distiller.trainable_variables}
    untrained_changed = [
        w.path for w in distiller.student.weights if id(w) not in trained
        and not np.array_equal(start[w.path], keras.ops.convert_to_numpy(w))]
    variables = distiller.student.weights + [
        w for layer in distiller._projections().values() for w in layer.weights]
    out = os.path.join(out_dir, f"{backend}-{stage}")
    np.savez(out + ".npz", **{f"{i}:{w.path}": keras.ops.convert_to_numpy(w)
                              for i, w in enumerate(variables)})
    with open(out + ".json", "w") as f:
        json.dump({"backend": keras.backend.backend(),
                   "taps": type(distiller.student_taps).__module__,
                   "trained": [w.path for w in distiller.trainable_variables],
                   "untrained_changed": untrained_changed,
                   "before": before, "fit": history, "after": after}, f)
distiller.student.save(os.path.join(out_dir, f"{backend}-student.keras"))
np.savez(os.path.join(out_dir, f"{backend}-student_logits.npz"), **batch,
         logits=keras.ops.convert_to_numpy(distiller.student(batch, training=False)))
# The teacher-logit cache (`kt.data.teacher_logits`: tf.data in, the forward
# pass compiled for the backend) on the last stage's teacher.
texts = tf.data.Dataset.from_tensor_slices(((SENTENCES,), LABELS))
cache = data.teacher_logits(texts, distiller.teacher, batch_size=3, sequence_length=16)
np.save(os.path.join(out_dir, f"{backend}-teacher_logits.npy"), cache)
print("OK", backend)
