"""Each loss against a NumPy reference written from the paper and its code."""

import numpy as np
import pytest

from keras_tinybert import losses

rng = np.random.default_rng(0)


def np_softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def test_hidden_mse_with_projection():
    hs = rng.normal(size=(3, 5, 4)).astype("float32")
    ht = rng.normal(size=(3, 5, 6)).astype("float32")
    W = rng.normal(size=(4, 6)).astype("float32")
    expected = np.mean((hs @ W - ht) ** 2)
    got = losses.hidden_mse(hs, ht, projection=lambda x: x @ W)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_hidden_mse_masked_ignores_padding():
    hs = rng.normal(size=(2, 4, 3)).astype("float32")
    ht = rng.normal(size=(2, 4, 3)).astype("float32")
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], "int32")
    sel = mask.astype(bool)
    expected = np.mean((hs[sel] - ht[sel]) ** 2)
    np.testing.assert_allclose(
        float(losses.hidden_mse(hs, ht, padding_mask=mask)), expected, rtol=1e-5
    )
    # Garbage in the padded positions changes nothing.
    hs2 = hs.copy()
    hs2[~sel] = 1e3
    np.testing.assert_allclose(
        float(losses.hidden_mse(hs2, ht, padding_mask=mask)), expected, rtol=1e-5
    )


def test_embedding_mse_is_hidden_mse():
    e_s = rng.normal(size=(2, 3, 4)).astype("float32")
    e_t = rng.normal(size=(2, 3, 4)).astype("float32")
    np.testing.assert_allclose(
        float(losses.embedding_mse(e_s, e_t)), np.mean((e_s - e_t) ** 2), rtol=1e-5
    )


def _scores(B=2, H=3, T=5, scale=3.0):
    return (rng.normal(size=(B, H, T, T)) * scale).astype("float32")


def paper_attention_reference(s, t, mask):
    """The paper's code: add (1-mask)·(−10000), then zero every entry ≤ −100."""
    add = (1.0 - mask[:, None, None, :]) * -10000.0
    s, t = s + add, t + add
    s = np.where(s <= -1e2, 0.0, s)
    t = np.where(t <= -1e2, 0.0, t)
    return np.mean((s - t) ** 2)


def test_attention_mse_paper_masking():
    s, t = _scores(), _scores()
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "float32")
    s[0, 0, 1, 2] = -250.0  # a real score below −100 is zeroed too (paper's code)
    expected = paper_attention_reference(s, t, mask)
    got = losses.attention_mse(s, t, mask.astype("int32"), masking="paper")
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_attention_mse_is_mean_over_heads_of_per_head_mse():
    """(1/h) Σ_heads MSE(A_i^S, A_i^T) == MSE over B·H·T·T when unpadded."""
    s, t = _scores(H=4), _scores(H=4)
    mask = np.ones((2, 5), "int32")
    per_head = [np.mean((s[:, i] - t[:, i]) ** 2) for i in range(4)]
    np.testing.assert_allclose(
        float(losses.attention_mse(s, t, mask)), np.mean(per_head), rtol=1e-5
    )


def test_attention_mse_exact_masking():
    s, t = _scores(), _scores()
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], "int32")
    pair = mask[:, None, :, None] * mask[:, None, None, :]
    pair = np.broadcast_to(pair, s.shape).astype(bool)
    expected = np.mean((s[pair] - t[pair]) ** 2)
    got = losses.attention_mse(s, t, mask, masking="exact")
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_attention_mse_head_mean():
    s, t = _scores(H=2), _scores(H=6)
    mask = np.ones((2, 5), "int32")
    expected = np.mean((s.mean(1) - t.mean(1)) ** 2)
    got = losses.attention_mse(s, t, mask, heads="mean")
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


@pytest.mark.parametrize("T", [1.0, 2.0])
def test_soft_cross_entropy(T):
    zs = rng.normal(size=(4, 3)).astype("float32")
    zt = rng.normal(size=(4, 3)).astype("float32") * 2
    p = np_softmax(zt / T)
    logq = np.log(np_softmax(zs / T))
    expected = np.mean(np.sum(-p * logq, -1))
    np.testing.assert_allclose(
        float(losses.soft_cross_entropy(zs, zt, T)), expected, rtol=1e-5
    )
    np.testing.assert_allclose(
        float(losses.soft_cross_entropy(zs, zt, T, reduction="elements")),
        expected / 3,
        rtol=1e-5,
    )


def test_soft_cross_entropy_minimum_is_teacher_entropy():
    zt = rng.normal(size=(4, 3)).astype("float32")
    p = np_softmax(zt)
    entropy = np.mean(-np.sum(p * np.log(p), -1))
    np.testing.assert_allclose(
        float(losses.soft_cross_entropy(zt, zt)), entropy, rtol=1e-5
    )


def test_prediction_loss_regression_is_mse():
    zs = rng.normal(size=(4, 1)).astype("float32")
    zt = rng.normal(size=(4, 1)).astype("float32")
    np.testing.assert_allclose(
        float(losses.prediction_loss(zs, zt)), np.mean((zs - zt) ** 2), rtol=1e-5
    )


def test_losses_are_float32_for_bfloat16_inputs():
    import keras

    s = keras.ops.cast(_scores(), "bfloat16")
    mask = np.ones((2, 5), "int32")
    assert keras.ops.convert_to_tensor(losses.attention_mse(s, s, mask)).dtype == "float32"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: losses.attention_mse(_scores(), _scores(), np.ones((2, 5)), masking="x"), "masking"),
        (lambda: losses.attention_mse(_scores(), _scores(), np.ones((2, 5)), heads="x"), "heads"),
        (lambda: losses.soft_cross_entropy(np.ones((1, 2)), np.ones((1, 2)), 0.0), "temperature"),
        (lambda: losses.soft_cross_entropy(np.ones((1, 2)), np.ones((1, 2)), reduction="x"), "reduction"),
    ],
)
def test_bad_options(call, message):
    with pytest.raises(ValueError, match=message):
        call()
