"""The taps read exactly what keras-hub computes, plus the pre-softmax scores."""

import keras
import numpy as np
import pytest

from keras_tinybert import testing
from keras_tinybert.taps import Taps, block_with_scores

SENTENCES = ["a good film , really", "bad", "the worst movie ever made"]


@pytest.fixture(scope="module")
def model():
    return testing.tiny_classifier(num_layers=3, hidden_dim=32, num_heads=4, seed=3)


@pytest.fixture(scope="module")
def inputs(model):
    x = model.preprocessor(SENTENCES)
    return {k: np.asarray(v) for k, v in x.items()}


@pytest.fixture(scope="module")
def tapped(model, inputs):
    return Taps(model)(inputs)


def numpy_scores(block, x):
    """QKᵀ/√d_head from the block's own kernels, in NumPy."""
    mha = block._self_attention_layer
    wq, bq = (w.numpy() for w in mha._query_dense.weights)
    wk, bk = (w.numpy() for w in mha._key_dense.weights)
    q = np.einsum("btd,dhk->bthk", x, wq) + bq
    k = np.einsum("btd,dhk->bthk", x, wk) + bk
    return np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(wq.shape[-1])


def test_shapes(tapped, inputs):
    B, T = inputs["token_ids"].shape
    assert tapped["embedding"].shape == (B, T, 32)
    assert [h.shape for h in tapped["hidden"]] == [(B, T, 32)] * 3
    assert [a.shape for a in tapped["attention"]] == [(B, 4, T, T)] * 3
    assert tapped["logits"].shape == (B, 2)


def test_scores_equal_numpy_recomputation(model, tapped):
    states = [tapped["embedding"]] + tapped["hidden"]
    for i, block in enumerate(model.backbone.transformer_layers):
        expected = numpy_scores(block, np.asarray(states[i]))
        got = np.asarray(tapped["attention"][i])
        assert np.abs(got - expected).max() <= 1e-5
        assert np.abs(expected).max() > 1e-3  # not trivially zero


def test_masked_softmax_of_scores_is_keras_hubs_attention(model, inputs, tapped):
    states = [tapped["embedding"]] + tapped["hidden"]
    mask = inputs["padding_mask"].astype(bool)[:, None, None, :]
    for i, block in enumerate(model.backbone.transformer_layers):
        _, probs = block(
            states[i], padding_mask=inputs["padding_mask"], return_attention_scores=True
        )
        scores = np.where(mask, np.asarray(tapped["attention"][i]), -np.inf)
        e = np.exp(scores - scores.max(-1, keepdims=True))
        np.testing.assert_allclose(
            e / e.sum(-1, keepdims=True), np.asarray(probs), atol=1e-6
        )


def test_block_outputs_equal_the_backbones(model, inputs, tapped):
    backbone = model.backbone
    outputs = [backbone.get_layer("embeddings_dropout").output] + [
        block.output for block in backbone.transformer_layers
    ]
    reference = keras.Model(backbone.input, outputs)(inputs)
    got = [tapped["embedding"]] + tapped["hidden"]
    for r, g in zip(reference, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), atol=1e-5)


def test_logits_equal_the_models(model, inputs, tapped):
    np.testing.assert_allclose(
        np.asarray(tapped["logits"]), np.asarray(model(inputs)), atol=1e-5
    )


def test_taps_share_the_models_weights(model, inputs):
    taps = Taps(model)
    block = model.backbone.transformer_layers[0]
    kernel = block._self_attention_layer._query_dense.kernel
    before = np.asarray(taps(inputs)["attention"][0])
    kernel.assign(kernel.numpy() * 2.0)
    try:
        after = np.asarray(taps(inputs)["attention"][0])
    finally:
        kernel.assign(kernel.numpy() / 2.0)
    assert not np.allclose(before, after)


def test_pre_norm_block(inputs):
    """A pre-norm block (normalize_first=True), as in some keras-hub encoders."""
    from keras_hub.layers import TransformerEncoder

    block = TransformerEncoder(16, 2, normalize_first=True)
    x = np.random.default_rng(0).normal(size=(3, inputs["token_ids"].shape[1], 8))
    x = x.astype("float32")
    expected = block(x, padding_mask=inputs["padding_mask"])
    got, scores = block_with_scores(block, x, inputs["padding_mask"])
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-5)
    assert scores.shape == (3, 2, x.shape[1], x.shape[1])


def test_backbone_without_head_has_no_logits(model, inputs):
    out = Taps(model.backbone)(inputs, attention=False)
    assert "logits" not in out and out["attention"] == []


def test_non_encoder_is_rejected():
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="transformer_layers"):
        Taps(dense)


def test_compiled_taps_equal_the_backbones(model, inputs):
    """In a tf.function (where Grappler fuses the layer norms and GELU products),
    the teacher's inference taps still equal keras-hub's outputs."""
    import tensorflow as tf

    backbone = model.backbone
    outputs = [block.output for block in backbone.transformer_layers]
    reference = keras.Model(backbone.input, outputs)(inputs)
    taps = Taps(model)
    got = tf.function(lambda x: taps(x)["hidden"])(inputs)
    for r, g in zip(reference, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), atol=1e-5)


@pytest.mark.parametrize("scale", [1.0, 1e-4])
def test_layer_norm_inference_equals_keras_and_keeps_epsilon(scale):
    """BERT's ε = 1e-12 is kept (tf.nn.fused_batch_norm would raise it to 1e-5,
    which at a variance of 1e-8 would change the output by ~50%)."""
    import tensorflow as tf

    from keras_tinybert.taps import layer_norm_inference

    layer = keras.layers.LayerNormalization(epsilon=1e-12)
    layer.build((None, 24))
    rng = np.random.default_rng(0)
    layer.gamma.assign(rng.normal(size=24).astype("float32"))
    layer.beta.assign(rng.normal(size=24).astype("float32"))
    rows = (rng.normal(size=(50, 24)) * scale + 3 * scale).astype("float32")
    expected = layer(rows)
    got = tf.function(lambda r: layer_norm_inference(layer, r))(rows)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=2e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_fused_norms_only_when_asked(model, inputs, fused):
    """The fused layer-norm graph (FusedBatchNormV3 → oneDNN's _MklLayerNorm) is
    built for inference with `fused_norms=True` and never in training or when
    turned off (the Distiller turns it off under XLA, where it is slow)."""
    import tensorflow as tf

    taps = Taps(model)

    def ops_of(training):
        fn = tf.function(lambda x: taps(x, training=training, fused_norms=fused)["hidden"])
        graph = fn.get_concrete_function(inputs).graph
        return {op.type for op in graph.get_operations()}

    assert ("FusedBatchNormV3" in ops_of(False)) == fused
    assert "FusedBatchNormV3" not in ops_of(True)


def test_block_without_padding_mask(inputs):
    """No mask: every key is attended, as in keras-hub's block."""
    from keras_hub.layers import TransformerEncoder

    block = TransformerEncoder(16, 2)
    x = np.random.default_rng(1).normal(size=(2, 5, 8)).astype("float32")
    expected = block(x)
    got, _ = block_with_scores(block, x, None)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-5)


def test_int8_quantized_teacher():
    """A quantized teacher is run with its own quantized layers: the taps equal
    keras-hub's int8 forward (quantization itself moves the output by ~1e-2)."""
    model = testing.tiny_classifier(num_layers=2, hidden_dim=32, num_heads=4, seed=3)
    x = {k: np.asarray(v) for k, v in model.preprocessor(SENTENCES).items()}
    float_output = np.asarray(model.backbone(x)["sequence_output"])
    model.backbone.quantize("int8")
    expected = np.asarray(model.backbone(x)["sequence_output"])
    got = np.asarray(Taps(model)(x)["hidden"][-1])
    assert np.abs(expected - float_output).max() > 1e-3
    np.testing.assert_allclose(got, expected, atol=1e-5)
