"""Replaying a functional graph runs only what the wanted outputs need."""

import keras
import numpy as np

from keras_tinybert.taps import graph


def test_replay_runs_only_the_needed_nodes():
    calls = []

    def counted(name, scale):
        return keras.layers.Lambda(lambda t: calls.append(name) or t * scale, name=name)

    inputs = keras.Input((3,))
    a = counted("a", 2.0)(inputs)
    b = counted("b", 3.0)(a)
    c = counted("c", 5.0)(b)
    model = keras.Model(inputs, c)
    x = np.ones((1, 3), "float32")
    calls.clear()
    values = {id(b): keras.ops.convert_to_tensor(x)}  # b known: only c runs
    (out,) = graph.replay(model, [c], values,
                          lambda node, args, kw: graph.run_layer(node, args, kw, False))
    assert calls == ["c"]
    np.testing.assert_allclose(np.asarray(out), 5.0 * x)


def test_call_nodes_list_a_shared_layer_once_per_call():
    inputs = keras.Input((3,))
    shared = keras.layers.Dense(3)
    x = inputs
    for _ in range(3):
        x = shared(x)
    model = keras.Model(inputs, x)
    assert [n.operation for n in graph.call_nodes(model)] == [shared] * 3
