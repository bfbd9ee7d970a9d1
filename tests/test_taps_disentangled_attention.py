"""The DeBERTaV3 adapter: keras-hub's outputs plus the full disentangled scores
s·(Q·K + Q·K^P_δ(i,j) + K·Q^P_δ(j,i)), before the masked softmax."""

import numpy as np
import pytest

from keras_tinybert import testing
from keras_tinybert.taps import Taps

SENTENCES = ["a good film , really , the best story of the year", "bad",
             "the worst movie ever made"]


@pytest.fixture(scope="module")
def model():
    # bucket_size 8 and 24 tokens: positions beyond ±4 are log-bucketed.
    return testing.spread_weights(
        testing.tiny_family_model("deberta_v3", num_layers=2, sequence_length=24, seed=4))




def numpy_buckets(length, bucket_size, max_position):
    """DeBERTa's log-bucketed relative positions δ(i, j) of i − j (He et al.)."""
    rel = np.arange(length)[:, None] - np.arange(length)[None, :]
    mid = bucket_size // 2
    far = np.where(np.abs(rel) < mid, mid - 1, np.abs(rel))
    log = np.ceil(np.log(far / mid) / np.log((max_position - 1) / mid) * (mid - 1)) + mid
    return np.where(far <= mid, rel, log * np.sign(rel)).astype(int)


def numpy_scores(backbone, block, x):
    att = block._self_attention_layer
    wq, bq = (w.numpy() for w in att._query_dense.weights)
    wk, bk = (w.numpy() for w in att._key_dense.weights)
    table = backbone.relative_embeddings
    p = table.rel_embeddings.numpy()
    ln = table.layer_norm
    p = (p - p.mean(-1, keepdims=True)) / np.sqrt(p.var(-1, keepdims=True) + ln.epsilon)
    p = p * ln.gamma.numpy() + ln.beta.numpy()
    q = np.einsum("btd,dhk->bhtk", x, wq) + bq[:, None]
    k = np.einsum("btd,dhk->bhtk", x, wk) + bk[:, None]
    pq = np.einsum("pd,dhk->hpk", p, wq) + bq[:, None]
    pk = np.einsum("pd,dhk->hpk", p, wk) + bk[:, None]
    span, length = att.bucket_size, x.shape[1]
    delta = numpy_buckets(length, span, att.max_position_embeddings)
    c2p_index = np.clip(delta + span, 0, 2 * span - 1)  # δ(i, j) for query i
    p2c_index = np.clip(-delta.T + span, 0, 2 * span - 1)  # −δ(j, i), at [i, j]
    content = np.einsum("bhik,bhjk->bhij", q, k)
    c2p = np.einsum("bhik,hpk->bhip", q, pk)
    c2p = np.take_along_axis(c2p, np.broadcast_to(c2p_index, content.shape), -1)
    p2c = np.einsum("bhjk,hpk->bhjp", k, pq)  # key j against positions
    p2c = np.stack([p2c[:, :, j, p2c_index[:, j]] for j in range(length)], -1)
    return (content + c2p + p2c) / np.sqrt(3 * q.shape[-1])


def test_buckets_reach_the_log_range(inputs, model):
    delta = numpy_buckets(inputs["token_ids"].shape[1], 8, 64)
    assert np.abs(delta).max() > 4 and len(np.unique(delta)) < 2 * delta.shape[0] - 1


def test_scores_equal_numpy_recomputation(model, tapped):
    states = [tapped["embedding"]] + tapped["hidden"]
    for i, block in enumerate(model.backbone.transformer_layers):
        expected = numpy_scores(model.backbone, block, np.asarray(states[i]))
        got = np.asarray(tapped["attention"][i])
        np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max())
        assert np.abs(expected).std() > 0.1


def test_masked_softmax_of_scores_is_keras_hubs_attention(model, inputs, tapped):
    states = [tapped["embedding"]] + tapped["hidden"]
    rel = model.backbone.relative_embeddings(states[0])
    mask = inputs["padding_mask"][:, None, :]
    visible = mask.astype(bool)[:, None]
    for i, block in enumerate(model.backbone.transformer_layers):
        _, probs = block._self_attention_layer(
            states[i], rel_embeddings=rel, attention_mask=mask,
            return_attention_scores=True)
        scores = np.where(visible, np.asarray(tapped["attention"][i]), -np.inf)
        e = np.exp(scores - scores.max(-1, keepdims=True))
        np.testing.assert_allclose(e / e.sum(-1, keepdims=True), np.asarray(probs),
                                   atol=1e-6)


def test_training_with_position_dropout_runs_per_example():
    """With dropout, each example gets its own dropped relative embeddings (as
    keras-hub draws them); the output keeps its shape and differs from inference."""
    model = testing.tiny_family_model("deberta_v3", dropout=0.3, seed=5)
    x = testing.family_inputs(model, SENTENCES)
    taps = Taps(model)
    train = taps(x, training=True)
    infer = taps(x, training=False)
    assert train["hidden"][-1].shape == infer["hidden"][-1].shape
    assert not np.allclose(np.asarray(train["hidden"][-1]), np.asarray(infer["hidden"][-1]))
