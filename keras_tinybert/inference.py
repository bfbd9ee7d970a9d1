"""`inference_forward(model)`: `model(x, training=False)` compiled once, on the
backend Keras runs on.

The teacher-logit cache and evaluation run a frozen model over many batches of
a `tf.data` pipeline (the input pipeline on every backend). On TensorFlow the
forward pass is one `tf.function` (with `signature`, one trace for every batch
shape; without, `reduce_retracing`). On JAX it is `jax.jit` over Keras'
`stateless_call`, with the model's current weights: XLA compiles once per
distinct batch shape, i.e. once per bucket length (and once more for a last,
smaller batch), so keep bucket boundaries few. Other backends call the model
eagerly. Outputs are NumPy arrays.
"""

import keras
import numpy as np


def inference_forward(model, signature=None):
    """A function x → NumPy `model(x, training=False)` for dicts of batched
    inputs (`tf.Tensor`s or arrays); `signature` is TensorFlow's input signature
    (ignored elsewhere)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if signature is not None:
            forward = tf.function(lambda x: model(x, training=False),
                                  input_signature=[signature])
        else:
            forward = tf.function(lambda x: model(x, training=False),
                                  reduce_retracing=True)
        return lambda x: np.asarray(forward(x))
    if backend == "jax":
        return _jax_forward(model)
    return lambda x: keras.ops.convert_to_numpy(model(_numpy(x), training=False))


def _jax_forward(model):
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    @jax.jit
    def forward(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=False)[0]

    return lambda x: np.asarray(forward(trainable, non_trainable, _numpy(x)))


def _numpy(x):
    return keras.tree.map_structure(np.asarray, x)
