import pytest

from keras_tinybert.layer_map import LayerMap, layer_map


@pytest.mark.parametrize(
    "strategy, M, N, blocks",
    [
        ("uniform", 4, 12, [3, 6, 9, 12]),
        ("uniform", 6, 12, [2, 4, 6, 8, 10, 12]),
        ("uniform", 2, 6, [3, 6]),
        ("uniform", 3, 3, [1, 2, 3]),
        ("top", 4, 12, [9, 10, 11, 12]),
        ("bottom", 4, 12, [1, 2, 3, 4]),
        ([1, 5, 12], 3, 12, [1, 5, 12]),
    ],
)
def test_maps(strategy, M, N, blocks):
    g = LayerMap(strategy, M, N)
    assert g.blocks == blocks
    assert [g(m) for m in range(M + 2)] == [0] + blocks + [N + 1]
    assert g.pairs() == list(zip(range(1, M + 1), blocks))


def test_boundaries_are_fixed():
    g = LayerMap("top", 2, 6)
    assert g(0) == 0 and g(3) == 7
    with pytest.raises(ValueError, match="outside 0..3"):
        g(4)


@pytest.mark.parametrize(
    "strategy, M, N, message",
    [
        ("uniform", 5, 4, "must not be deeper"),
        ("uniform", 4, 6, "does not divide|not an integer"),
        ("diagonal", 2, 4, "Unknown layer map"),
        ([1, 2, 7], 3, 6, r"out of range: teacher blocks are numbered 1..6"),
        ([0, 2, 3], 3, 6, "out of range"),
        ([2, 2, 3], 3, 6, "strictly increasing"),
        ([3, 2], 2, 6, "strictly increasing"),
        ([1, 2], 3, 6, "one teacher block per student block"),
        ([1.5, 2], 2, 6, "integers"),
        ("uniform", 0, 6, "at least one"),
    ],
)
def test_clear_errors(strategy, M, N, message):
    with pytest.raises(ValueError, match=message):
        LayerMap(strategy, M, N)


def test_uniform_error_suggests_divisors():
    with pytest.raises(ValueError, match=r"\[1, 2, 3, 6\]"):
        LayerMap("uniform", 4, 6)


def test_config_round_trip_and_equality():
    for g in (LayerMap("uniform", 2, 6), LayerMap([2, 5], 2, 6)):
        assert LayerMap.from_config(g.get_config()) == g
    assert LayerMap("uniform", 2, 6) != LayerMap("top", 2, 6)


def test_layer_map_accepts_instances_of_the_right_size():
    g = LayerMap("top", 2, 6)
    assert layer_map(g, 2, 6) is g
    with pytest.raises(ValueError, match="was built for M=2, N=6"):
        layer_map(g, 2, 4)
