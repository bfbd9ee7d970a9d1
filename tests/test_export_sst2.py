"""Quantised TFLite on real text: a student briefly trained on SST-2, exported with
dynamic-range and full-integer int8 quantisation, must keep ≥ 99% of its argmaxes on
the SST-2 dev sentences (872). The figures are printed (`pytest -s`) for the docs.
"""

import csv

import keras
import numpy as np
import pytest

from keras_tinybert import export as kt_export
from keras_tinybert import testing

pytestmark = pytest.mark.integration


def _read_sst2(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [row[0] for row in rows], np.array([int(row[1]) for row in rows])


@pytest.fixture(scope="module")
def sst2(shared_data):
    return _read_sst2(shared_data / "sst2" / "train.tsv"), _read_sst2(shared_data / "sst2" / "dev.tsv")


@pytest.fixture(scope="module")
def trained_student(sst2):
    """2 layers, 64 hidden, a 4,000-word SST-2 vocabulary, 3 epochs on 6,000 sentences."""
    (train_x, train_y), (dev_x, dev_y) = sst2
    order = np.random.default_rng(0).permutation(len(train_x))[:6000]
    model = testing.tiny_classifier_with_vocabulary(
        testing.word_vocabulary(train_x, size=4000),
        num_layers=2, hidden_dim=64, num_heads=4, intermediate_dim=128,
        sequence_length=64, dropout=0.1,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit([train_x[i] for i in order], train_y[order], batch_size=32, epochs=3, verbose=0)
    _, accuracy = model.evaluate(dev_x, dev_y, verbose=0)
    assert accuracy > 0.70, "the student must have learnt something for agreement to mean anything"
    return model


@pytest.mark.parametrize("quantization", ["dynamic", "int8"])
def test_quantized_tflite_agrees_on_sst2_dev(trained_student, sst2, quantization, tmp_path):
    (train_x, _), (dev_x, _) = sst2
    calibration = train_x[-500:]  # real sentences, none of them trained on
    path = kt_export.tflite(
        trained_student, tmp_path / f"sst2_{quantization}.tflite",
        quantization=quantization, representative_data=calibration,
    )
    parity = kt_export.verify(path, trained_student, dev_x)
    print(f"\n{parity}")
    assert parity.num_examples == 872
    assert parity.agreement >= 0.99
    assert parity.max_abs_diff < 1.0
