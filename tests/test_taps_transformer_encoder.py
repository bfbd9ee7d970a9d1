"""The `TransformerEncoder` adapter: keras-hub's outputs plus QKᵀ/√d_head."""

import numpy as np
import pytest
from keras_hub.layers import TransformerEncoder

from keras_tinybert import testing
from keras_tinybert.taps import Taps, block_with_scores

SENTENCES = ["a good film , really", "bad", "the worst movie ever made"]


@pytest.fixture(scope="module")
def model():
    return testing.spread_weights(
        testing.tiny_classifier(num_layers=3, hidden_dim=32, num_heads=4, seed=3))




def numpy_scores(block, x):
    """QKᵀ/√d_head from the block's own kernels, in NumPy."""
    mha = block._self_attention_layer
    wq, bq = (w.numpy() for w in mha._query_dense.weights)
    wk, bk = (w.numpy() for w in mha._key_dense.weights)
    q = np.einsum("btd,dhk->bthk", x, wq) + bq
    k = np.einsum("btd,dhk->bthk", x, wk) + bk
    return np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(wq.shape[-1])


def masked_softmax(scores, visible):
    scores = np.where(visible, scores, -np.inf)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_scores_equal_numpy_recomputation(model, tapped):
    states = [tapped["embedding"]] + tapped["hidden"]
    for i, block in enumerate(model.backbone.transformer_layers):
        expected = numpy_scores(block, np.asarray(states[i]))
        got = np.asarray(tapped["attention"][i])
        np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max())
        assert np.abs(expected).std() > 0.1  # not trivially small


def test_masked_softmax_of_scores_is_keras_hubs_attention(model, inputs, tapped):
    states = [tapped["embedding"]] + tapped["hidden"]
    visible = inputs["padding_mask"].astype(bool)[:, None, None, :]
    for i, block in enumerate(model.backbone.transformer_layers):
        _, probs = block(
            states[i], padding_mask=inputs["padding_mask"], return_attention_scores=True
        )
        np.testing.assert_allclose(
            masked_softmax(np.asarray(tapped["attention"][i]), visible),
            np.asarray(probs), atol=1e-6,
        )


def test_pre_norm_block(inputs):
    """A pre-norm block (normalize_first=True), as in some keras-hub encoders."""
    block = TransformerEncoder(16, 2, normalize_first=True)
    x = np.random.default_rng(0).normal(size=(3, inputs["token_ids"].shape[1], 8))
    x = x.astype("float32")
    expected = block(x, padding_mask=inputs["padding_mask"])
    got, scores = block_with_scores(block, x, inputs["padding_mask"])
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-5)
    assert scores.shape == (3, 2, x.shape[1], x.shape[1])


def test_block_without_padding_mask():
    """No mask: every key is attended, as in keras-hub's block."""
    block = TransformerEncoder(16, 2)
    x = np.random.default_rng(1).normal(size=(2, 5, 8)).astype("float32")
    expected = block(x)  # builds the block
    got, _ = block_with_scores(block, x, None)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-5)


def test_block_with_an_attention_mask():
    """A [B, T, T] attention mask, alone and with a padding mask, as keras-hub
    merges them; the probabilities are the masked softmax of the scores."""
    rng = np.random.default_rng(2)
    block = TransformerEncoder(16, 2)
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    pairs = np.tril(np.ones((5, 5), "int32"))[None].repeat(2, 0)  # causal
    padding = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], "int32")
    for kwargs in ({"attention_mask": pairs},
                   {"attention_mask": pairs, "padding_mask": padding}):
        expected, probs = block(x, return_attention_scores=True, **kwargs)
        got, scores = block_with_scores(block, x, kwargs.get("padding_mask"),
                                        attention_mask=pairs)
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-5)
        visible = pairs[:, None].astype(bool)
        if "padding_mask" in kwargs:
            visible &= padding.astype(bool)[:, None, None, :]
        np.testing.assert_allclose(masked_softmax(np.asarray(scores), visible),
                                   np.asarray(probs), atol=1e-6)


def test_int8_quantized_teacher():
    """A quantized teacher is run with its own quantized layers: the taps equal
    keras-hub's int8 forward (quantization itself moves the output by ~1e-2)."""
    model = testing.tiny_classifier(num_layers=2, hidden_dim=32, num_heads=4, seed=3)
    x = testing.family_inputs(model, SENTENCES)
    float_output = np.asarray(model.backbone(x)["sequence_output"])
    model.backbone.quantize("int8")
    expected = np.asarray(model.backbone(x)["sequence_output"])
    got = np.asarray(Taps(model)(x)["hidden"][-1])
    assert np.abs(expected - float_output).max() > 1e-3
    np.testing.assert_allclose(got, expected, atol=1e-5)
