"""Run by test_distillation_loss.py in a fresh process: the Distiller's loss path
under another Keras backend (``KERAS_BACKEND=jax``), against TensorFlow's.

    python tests/jax_distiller_step.py {tensorflow,jax} WEIGHTS OUT.json [--taps=ops]

Builds `testing.tiny_distiller` (stage "joint"), loads WEIGHTS (saved by the
TensorFlow side, so both backends start from the same numbers), evaluates one
fixed batch, takes two SGD steps and writes the losses before and after to OUT.json
and the trained weights to OUT.json.npz.

`kt.Taps` runs TensorFlow kernels (`tf.matmul`, fused norms), which JAX cannot
trace (issue 18 item 2). Until taps.py has a `keras.ops` path, ``--taps=ops`` uses
`OpsTaps` below: the same taps (the model's graph replayed by `kt.Taps`) with a
`keras.ops` adapter for the blocks: keras-hub's own block call, with the scores
recomputed from the block's query and key projections.
"""

import json
import os
import sys

backend, weights_path, out_path = sys.argv[1:4]
os.environ["KERAS_BACKEND"] = backend

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

import keras_tinybert as kt  # noqa: E402
from keras_tinybert import distiller as distiller_module  # noqa: E402
from keras_tinybert import testing  # noqa: E402
from keras_tinybert.taps import Taps  # noqa: E402
from keras_tinybert.taps.registry import Adapter  # noqa: E402

SENTENCES = ["a good film", "bad movie , boring", "the best story ever",
             "awful script", "charming and warm", "i hated it", "brilliant",
             "too long and too slow"]


def ops_block(block, x, padding_mask=None, attention_mask=None, training=False,
              fused_norms=False):
    """A `TransformerEncoder` call in `keras.ops`: keras-hub's own block call, and
    the scores recomputed from the block's query and key projections."""
    mha = block._self_attention_layer
    query = mha._query_dense(x) * mha._inverse_sqrt_key_dim
    scores = ops.einsum("btnh,bsnh->bnts", query, mha._key_dense(x))
    output = block(x, padding_mask=padding_mask, attention_mask=attention_mask,
                   training=training)
    return output, scores


class OpsTaps(Taps):
    """`kt.Taps` with the `keras.ops` block adapter above for every block call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._adapters = {node: Adapter(ops_block, adapter.num_heads)
                          for node, adapter in self._adapters.items()}


if "--taps=ops" in sys.argv:
    distiller_module.Taps = OpsTaps

distiller = testing.tiny_distiller(keras.optimizers.SGD(0.5), stage="joint")
if backend == "tensorflow" and not os.path.exists(weights_path):
    distiller.save_weights(weights_path)
distiller.load_weights(weights_path)
batch = distiller.teacher.preprocessor(SENTENCES)
batch = {k: keras.ops.convert_to_numpy(v) for k, v in batch.items()}
labels = np.array([1, 0, 1, 0, 1, 0, 1, 0])

before = distiller.evaluate(batch, labels, batch_size=8, return_dict=True, verbose=0)
history = distiller.fit(batch, labels, batch_size=8, epochs=2, shuffle=False,
                        verbose=0).history
after = distiller.evaluate(batch, labels, batch_size=8, return_dict=True, verbose=0)
np.savez(out_path + ".npz", **{w.path: keras.ops.convert_to_numpy(w)
                              for w in distiller.trainable_weights})
with open(out_path, "w") as f:
    json.dump({"backend": keras.backend.backend(),
               "taps": type(distiller.student_taps).__name__,
               "before": before, "fit": history, "after": after}, f)
print("OK", backend)
