"""The taps reader: blocks found by call, logits replayed from the model's own
graph, for every keras-hub text-encoder family."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_tinybert import testing
from keras_tinybert.taps import Taps, backbone_of, vocabulary_size

SENTENCES = ["a good film , really", "bad", "the worst movie ever made"]
NO_ATTENTION = {"f_net"}


@pytest.fixture(scope="module", params=sorted(testing.FAMILIES))
def family(request):
    model = testing.spread_weights(
        testing.tiny_family_model(request.param, num_layers=3, num_heads=4, seed=1))
    return request.param, model, testing.family_inputs(model, SENTENCES)


def test_taps_equal_the_models_own_forward_pass(family):
    """Embedding, every block call and — for task models — the logits replayed
    from the last block's output equal keras-hub's forward pass."""
    name, model, inputs = family
    out = testing.check_taps(model, inputs)
    has_classifier = testing.FAMILIES[name].classifier is not None
    assert ("logits" in out) == has_classifier
    if has_classifier:  # not a constant: the replayed head is tested for real
        assert np.asarray(out["logits"]).std() > 0.05


def test_what_the_taps_report(family):
    name, model, inputs = family
    taps = Taps(model)
    assert taps.num_layers == 3 and taps.hidden_dim == 32
    assert taps.has_attention == (name not in NO_ATTENTION)
    assert taps.num_heads == (None if name in NO_ATTENTION else 4)
    assert taps.has_logits == (testing.FAMILIES[name].classifier is not None)
    bare = Taps(backbone_of(model))
    assert not bare.has_logits and "logits" not in bare(inputs, attention=False)
    assert not Taps(model, logits=False).has_logits
    tokenizer = testing.preprocessor_of(model).tokenizer
    assert vocabulary_size(model) == tokenizer.vocabulary_size()


def _compiled(fn):
    """`fn` compiled as the backend compiles a training step."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    return tf.function(fn)


@pytest.mark.parametrize("name", ["bert", "deberta_v3", "roformer_v2"])
def test_compiled_taps_equal_the_models(name):
    """Compiled (a tf.function, where Grappler fuses layer norms and products, or
    jax.jit), the teacher's inference taps and logits still equal keras-hub's."""
    model = testing.spread_weights(testing.tiny_family_model(name, seed=2))
    inputs = testing.family_inputs(model, SENTENCES)
    taps = Taps(model)
    got = _compiled(lambda x: taps(x))(inputs)
    expected = Taps(model)(inputs, fused_norms=False)
    for key in ("hidden", "attention"):
        for g, e in zip(got[key], expected[key]):
            np.testing.assert_allclose(np.asarray(g), np.asarray(e), atol=1e-5)
    np.testing.assert_allclose(np.asarray(got["logits"]), np.asarray(model(inputs)),
                               atol=1e-5)


@pytest.mark.tensorflow_only  # JAX traces concrete shapes
@pytest.mark.parametrize("name", ["bert", "deberta_v3", "roformer_v2", "f_net"])
def test_taps_trace_with_unknown_batch_and_length(name):
    """Traced as a training step traces them ([None, None] inputs), the taps
    keep static widths and equal the eager taps."""
    model = testing.tiny_family_model(name, seed=2)
    inputs = testing.family_inputs(model, SENTENCES)
    taps = Taps(model)
    spec = {k: tf.TensorSpec((None, None), v.dtype) for k, v in inputs.items()}
    fn = tf.function(lambda x: taps(x, training=True), input_signature=[spec])
    got = fn(inputs)
    expected = taps(inputs, training=True)
    assert got["hidden"][-1].shape == expected["hidden"][-1].shape
    np.testing.assert_allclose(np.asarray(got["logits"]), np.asarray(expected["logits"]),
                               atol=1e-5)


def test_albert_shared_blocks_give_one_tap_per_call():
    """ALBERT: 2 groups of 2 layers, each group called twice → 8 block calls of
    4 distinct layers, and 8 taps."""
    tokenizer = testing.FAMILIES["albert"].tokenizer()
    backbone = keras_hub.models.AlbertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=4, num_heads=2,
        embedding_dim=8, hidden_dim=16, intermediate_dim=32, num_groups=2,
        num_inner_repetitions=2, max_sequence_length=32)
    testing.with_preprocessor(backbone, keras_hub.models.AlbertTextClassifierPreprocessor(
        tokenizer, sequence_length=12))
    taps = Taps(backbone)
    assert taps.num_layers == 8
    (a, b), (c, d) = backbone.transformer_layers
    assert [id(x) for x in taps.blocks] == [id(x) for x in (a, b, a, b, c, d, c, d)]
    testing.check_taps(backbone, testing.family_inputs(backbone, SENTENCES))


def test_a_head_override_is_used():
    model = testing.tiny_classifier(num_layers=2, seed=3)
    inputs = testing.family_inputs(model, SENTENCES)
    taps = Taps(model.backbone, head=lambda seq, training: seq[:, 0, :2])
    out = taps(inputs)
    np.testing.assert_allclose(np.asarray(out["logits"]),
                               np.asarray(out["hidden"][-1][:, 0, :2]))


def test_taps_share_the_models_weights():
    model = testing.tiny_classifier(num_layers=2, seed=3)
    inputs = testing.family_inputs(model, SENTENCES)
    taps = Taps(model)
    kernel = model.backbone.transformer_layers[0]._self_attention_layer._query_dense.kernel
    before = np.asarray(taps(inputs)["attention"][0])
    kernel.assign(kernel.numpy() * 2.0)
    try:
        after = np.asarray(taps(inputs)["attention"][0])
    finally:
        kernel.assign(kernel.numpy() / 2.0)
    assert not np.allclose(before, after)


def test_non_encoder_is_rejected():
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="transformer_layers"):
        Taps(dense)


def test_unknown_block_type_is_named():
    class MyBlock(keras.layers.Layer):
        def call(self, x):
            return x

    inputs = keras.Input((None, 4))
    backbone = keras.Model(inputs, MyBlock()(inputs))
    backbone.transformer_layers = [backbone.layers[-1]]
    with pytest.raises(ValueError, match="MyBlock.*register_adapter"):
        Taps(backbone)


def test_missing_inputs_are_named():
    model = testing.tiny_classifier(num_layers=2, seed=3)
    inputs = testing.family_inputs(model, SENTENCES)
    del inputs["padding_mask"]
    with pytest.raises(ValueError, match="padding_mask"):
        Taps(model)(inputs)
