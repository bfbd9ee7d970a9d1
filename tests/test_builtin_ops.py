"""The TFLite builtin formulations equal keras-hub's own code (and NumPy), apply only
inside `builtin_formulations`, and leave a model that needs other TF ops to the
Select TF ops fallback."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_hub.src.models.deberta_v3.disentangled_self_attention import DisentangledSelfAttention

from keras_tinybert import testing
from keras_tinybert.export import builtin_ops, litert


@pytest.mark.parametrize("bucket_size, max_position", [(256, 512), (16, 64), (6, 33)])
def test_log_buckets_equal_keras_hubs(bucket_size, max_position):
    layer = DisentangledSelfAttention(num_heads=2, hidden_dim=8, max_position_embeddings=max_position,
                                      bucket_size=bucket_size)
    rel_pos = tf.range(-3 * max_position, 3 * max_position, dtype="int64")[None, :]
    expected = layer._make_log_bucket_position(rel_pos).numpy()
    got = builtin_ops.log_bucket_position(layer, rel_pos)
    assert got.dtype == tf.int64
    np.testing.assert_array_equal(got.numpy(), expected)
    assert len(np.unique(expected)) > bucket_size // 2  # far positions really are log-bucketed


@pytest.mark.parametrize("shape", [(2, 7, 12), (1, 16, 32), (3, 1, 5)])
def test_real_fft2_equals_numpy(shape):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    expected = np.fft.fft2(x).real  # over the last two axes, as keras' ops.fft2
    got = np.asarray(builtin_ops.real_fft2(tf.constant(x)))
    np.testing.assert_allclose(got, expected, atol=2e-5 * np.abs(expected).max())


def _sublayers(model, name):
    return [layer for layer in model._flatten_layers() if type(layer).__name__ == name]


@pytest.mark.parametrize("family, layer_name", [("deberta_v3", "DisentangledSelfAttention"),
                                                ("f_net", "FNetEncoder"),
                                                ("roformer_v2", "RoformrPositionalEmbedding")])
def test_model_output_unchanged_and_restored(family, layer_name):
    model = testing.spread_weights(testing.tiny_family_model(family, num_layers=2, sequence_length=48))
    # long enough rows that DeBERTa's positions reach its log buckets (the tiny bucket size is 8)
    inputs = model.preprocessor(tf.constant([" ".join(testing.tiny_sentences(8, seed=3))] * 2
                                            + testing.tiny_sentences(2, seed=4)))
    expected = np.asarray(model(inputs))
    layers = _sublayers(model, layer_name)
    with builtin_ops.builtin_formulations(model) as replaced:
        assert replaced == [layer_name]
        assert all(layer.__dict__.get("call") or layer.__dict__.get("_make_log_bucket_position")
                   for layer in layers)
        got = np.asarray(model(inputs))
    np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max())
    assert np.ptp(expected[:, 0]) > 1e-2
    for layer in layers:  # keras-hub's own methods again
        assert "call" not in layer.__dict__ and "_make_log_bucket_position" not in layer.__dict__


def test_rotary_equals_keras_hubs_on_a_model_layer():
    model = testing.tiny_family_model("roformer_v2", num_layers=1)
    layer = _sublayers(model, "RoformrPositionalEmbedding")[0]
    rng = np.random.default_rng(1)
    query, key = (tf.constant(rng.normal(size=(2, 9, 4, 8)).astype("float32")) for _ in range(2))
    expected = layer([query, key])
    got = builtin_ops.rotary_embedding_call(layer, [query, key])
    for e, g in zip(expected, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), atol=1e-5)


class _Fourier(keras.layers.Layer):
    """A layer whose TF graph needs FFT2D (no builtin formulation is registered for it)."""

    def call(self, x):
        return tf.math.real(tf.signal.fft2d(tf.complex(x, tf.zeros_like(x))))


def test_other_tf_ops_fall_back_to_select_tf_ops(capsys):
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(10, 4)(ids)
    logits = keras.layers.Dense(2)(keras.ops.mean(_Fourier()(x), axis=1))
    model = keras.Model({"token_ids": ids}, logits)
    with pytest.warns(litert.SelectTfOpsNote):
        content, flex_ops = litert.convert_with_note(model)
    assert "tf.FFT2D" in flex_ops and "tf.FFT2D" in capsys.readouterr().out
    assert b"FlexFFT2D" in content
