"""Shared fixtures: tiny keras-hub BERT models and the path to the real data."""

import os
import pathlib

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]


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
