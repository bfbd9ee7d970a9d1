"""The shared kernels equal Keras' layers and masks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_tinybert import testing
from keras_tinybert.taps import Taps
from keras_tinybert.taps import kernels


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("scale", [1.0, 1e-4])
def test_layer_norm_inference_equals_keras_and_keeps_epsilon(scale):
    """BERT's ε = 1e-12 is kept (tf.nn.fused_batch_norm would raise it to 1e-5,
    which at a variance of 1e-8 would change the output by ~50%)."""
    layer = keras.layers.LayerNormalization(epsilon=1e-12)
    layer.build((None, 24))
    rng = np.random.default_rng(0)
    layer.gamma.assign(rng.normal(size=24).astype("float32"))
    layer.beta.assign(rng.normal(size=24).astype("float32"))
    rows = (rng.normal(size=(50, 24)) * scale + 3 * scale).astype("float32")
    expected = layer(rows)
    got = tf.function(lambda r: kernels.layer_norm_inference(layer, r))(rows)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=2e-5)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("fused", [True, False])
def test_fused_norms_only_when_asked(fused):
    """The fused layer-norm graph (FusedBatchNormV3 → oneDNN's _MklLayerNorm) is
    built for inference with `fused_norms=True` and never in training or when
    turned off (the Distiller turns it off under XLA, where it is slow)."""
    model = testing.tiny_classifier(num_layers=2, hidden_dim=32, num_heads=4, seed=3)
    inputs = testing.family_inputs(model, ["a good film", "bad"])
    taps = Taps(model)

    def ops_of(training):
        fn = tf.function(lambda x: taps(x, training=training, fused_norms=fused)["hidden"])
        graph = fn.get_concrete_function(inputs).graph
        return {op.type for op in graph.get_operations()}

    assert ("FusedBatchNormV3" in ops_of(False)) == fused
    assert "FusedBatchNormV3" not in ops_of(True)


def test_attention_bias_merges_padding_and_attention_masks():
    """Keys masked by padding, pairs masked by an attention mask, both: min."""
    x = np.zeros((1, 3, 2), "float32")
    padding = np.array([[1, 1, 0]])
    pairs = np.array([[[1, 0, 1], [1, 1, 1], [0, 1, 1]]])
    bias = np.asarray(kernels.attention_bias(x, padding, pairs))
    expected = np.where(np.minimum(padding[:, None, :], pairs), 0.0, -1e9)[:, None]
    np.testing.assert_array_equal(bias, expected)
    assert np.asarray(kernels.attention_bias(x, padding)).shape == (1, 1, 1, 3)
    assert kernels.attention_bias(x) is None


def test_dense_rows_equals_the_layer():
    """A Dense and a multi-head EinsumDense on rows equal the layers' calls."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    dense = keras.layers.Dense(6, activation="gelu")
    heads = keras.layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 3),
                                     bias_axes="de")
    for layer in (dense, heads):
        expected = np.asarray(layer(x)).reshape(10, -1)
        got = np.asarray(kernels.dense_rows(layer, x.reshape(10, 8)))
        np.testing.assert_allclose(got, expected, atol=1e-6)
