"""The RoFormerV2 adapter: keras-hub's outputs plus the scores after the rotary
rotation, (R_i q_i)·(R_j k_j)/√d_head."""

import numpy as np
import pytest

from keras_tinybert import testing

SENTENCES = ["a good film , really", "bad", "the worst movie ever made"]


@pytest.fixture(scope="module")
def model():
    return testing.spread_weights(testing.tiny_family_model("roformer_v2", seed=6))




def rotate(x, base=10000.0):
    """RoPE on [B, T, H, d]: each pair (x_2i, x_2i+1) at position t turned by
    the angle t·base^(−2i/d)."""
    length, size = x.shape[1], x.shape[-1]
    angle = np.arange(length)[:, None] * base ** (-2 * np.arange(size // 2) / size)
    cos, sin = np.cos(angle)[None, :, None], np.sin(angle)[None, :, None]
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = odd * cos + even * sin
    return out


def numpy_scores(block, x):
    att = block.attention_layer
    shape = x.shape[:2] + (att.heads, att.head_size)
    q = rotate((x @ att.q_dense.kernel.numpy()).reshape(shape), att.max_wavelength)
    k = rotate((x @ att.k_dense.kernel.numpy()).reshape(shape), att.max_wavelength)
    return np.einsum("bihk,bjhk->bhij", q, k) / np.sqrt(att.head_size)


def test_scores_equal_numpy_recomputation(model, tapped):
    states = [tapped["embedding"]] + tapped["hidden"]
    for i, block in enumerate(model.backbone.transformer_layers):
        expected = numpy_scores(block, np.asarray(states[i]))
        got = np.asarray(tapped["attention"][i])
        np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max())
        assert np.abs(expected).std() > 0.1


def test_scores_depend_on_relative_position_only(model):
    """The rotary property: the same token pair at a shifted offset scores alike."""
    block = model.backbone.transformer_layers[0]
    rng = np.random.default_rng(0)
    token = rng.normal(size=(1, 1, 32)).astype("float32")
    x = np.repeat(token, 12, axis=1)
    scores = numpy_scores(block, x)[0, 0]
    np.testing.assert_allclose(np.diagonal(scores, 2)[:-1], np.diagonal(scores, 2)[1:],
                               rtol=1e-4)
