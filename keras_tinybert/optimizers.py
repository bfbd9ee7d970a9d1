"""AdamW whose Adam step is TensorFlow's fused `ResourceApplyAdam` kernel.

Distillation updates every student weight every step, the 30,522-row token
embedding included (Adam's moments decay on every row, so its update is dense).
Keras' `AdamW.update_step` writes the update as a dozen element-wise operations
(subtract, multiply, square, square root, divide, three assignments), each a pass
over the weights with a temporary of their size. TensorFlow has the same update as
one kernel, `ResourceApplyAdam`:

    α_t = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)
    m ← m + (g − m)(1 − β₁),   v ← v + (g² − v)(1 − β₂),   θ ← θ − α_t·m/(√v + ε)

which is exactly Keras' `Adam.update_step` (same ε placement, same bias
correction), evaluated in three fused passes. The decoupled weight decay
θ ← θ − lr·λ·θ is Keras' own, applied before the step as in `keras.optimizers.AdamW`.

An embedding's gradient arrives as `IndexedSlices` (one slice per token in the
batch); it is summed into a dense gradient first, so a token seen twice gets
v ← … (g₁ + g₂)², as in PyTorch and in Keras with dense gradients. (Keras' own
update keeps the slices and squares each one, g₁² + g₂², which is not Adam's v.)

`AdamW` here is a drop-in `keras.optimizers.AdamW` (same arguments, same
`get_config`); on other backends, with AMSGrad, or for non-float32 variables it
falls back to Keras' update. A test checks that both give the same weights to
1e-6 after several steps (tests/test_optimizers.py); docs/PERFORMANCE.md has the
measured gain.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_tinybert")
class AdamW(keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with TensorFlow's fused Adam kernel."""

    def update_step(self, gradient, variable, learning_rate):
        if keras.backend.backend() != "tensorflow":  # Keras' own update
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf  # only where the fused kernel runs

        if isinstance(gradient, tf.IndexedSlices):  # an embedding's rows: sum them
            gradient = tf.convert_to_tensor(gradient)
        if not self._fusable(variable):
            return super().update_step(gradient, variable, learning_rate)

        dtype = variable.dtype
        local_step = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(m),
            v=_handle(v),
            beta1_power=ops.power(ops.cast(self.beta_1, dtype), local_step),
            beta2_power=ops.power(ops.cast(self.beta_2, dtype), local_step),
            lr=ops.cast(learning_rate, dtype),
            beta1=ops.cast(self.beta_1, dtype),
            beta2=ops.cast(self.beta_2, dtype),
            epsilon=ops.cast(self.epsilon, dtype),
            grad=ops.cast(gradient, dtype),
        )

    def _fusable(self, variable):
        return (
            keras.backend.backend() == "tensorflow"
            and not self.amsgrad
            and keras.backend.standardize_dtype(variable.dtype) == "float32"
        )


def _handle(variable):
    """The resource handle of a Keras or tf.Variable (or a mirrored component)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle
