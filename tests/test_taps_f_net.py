"""The F-Net adapter: keras-hub's outputs, and no attention to tap."""

import pytest

from keras_tinybert import testing
from keras_tinybert.taps import Taps


@pytest.fixture(scope="module")
def model():
    return testing.spread_weights(testing.tiny_family_model("f_net", num_layers=3, seed=7))


def test_outputs_and_logits_equal_keras_hubs(model):
    x = testing.family_inputs(model, ["a good film , really", "bad"])
    out = testing.check_taps(model, x)
    assert out["attention"] == [] and len(out["hidden"]) == 3


def test_no_attention(model):
    taps = Taps(model)
    assert not taps.has_attention and taps.num_heads is None
    assert taps.num_layers == 3 and taps.hidden_dim == 32
