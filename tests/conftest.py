"""Shared fixtures: tiny keras-hub BERT models and the path to the real data."""

import os
import pathlib

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    """Under another Keras backend (scripts/test.sh's second run, KERAS_BACKEND=jax),
    skip the tests of TensorFlow-only paths, saying so."""
    backend = os.environ["KERAS_BACKEND"]
    if backend == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"a TensorFlow-only path; this run's backend is {backend}")
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)


def data_dir():
    """The real data (SST-2, WikiText-2): $KT_DATA_DIR or ../shared/data."""
    return pathlib.Path(
        os.environ.get("KT_DATA_DIR", REPO.parent / "shared" / "data")
    )


@pytest.fixture(scope="session")
def shared_data():
    path = data_dir()
    if not (path / "sst2" / "dev.tsv").exists():
        pytest.skip(f"real data not found at {path}; set KT_DATA_DIR")
    return path


@pytest.fixture(scope="module")
def sentences():
    """48 random review-like sentences (the export tests' data)."""
    from keras_tinybert import testing

    return testing.review_sentences(48, seed=0)


@pytest.fixture(scope="module")
def student(sentences):
    """A tiny BERT classifier whose weights were spread so its logits vary."""
    from keras_tinybert import testing

    return testing.vary_weights(testing.tiny_classifier(), sentences)


@pytest.fixture(scope="module")
def inputs(request, model):
    """An adapter test's `model` inputs for its module's `SENTENCES` (padded)."""
    from keras_tinybert import testing

    return testing.family_inputs(model, request.module.SENTENCES)


@pytest.fixture(scope="module")
def tapped(model, inputs):
    """`testing.check_taps` of the module's model: taps equal keras-hub's forward
    (RoFormerV2 included: keras-hub masks its padded queries, outputs still match)."""
    from keras_tinybert import testing

    return testing.check_taps(model, inputs)
