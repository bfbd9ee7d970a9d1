"""GLUE as `tf.data`, from a local folder or TFDS (keras_tinybert.data.glue)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_tinybert import data
from keras_tinybert.testing import tiny_preprocessor

MNLI_ROWS = ["index\tsentence1\tsentence2\tgold_label",
             "0\ta\tb\tcontradiction", "1\tc\td\tentailment", "2\te\tf\tneutral"]


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_load_glue_from_glue_root_and_label_remap(tmp_path):
    write(tmp_path / "MNLI" / "dev_mismatched.tsv", MNLI_ROWS)
    ds = data.load_glue("mnli", "dev_mismatched", data_dir=tmp_path)
    (premise, hypothesis), label = next(iter(ds))
    assert (premise.numpy(), hypothesis.numpy(), int(label)) == (b"a", b"b", 2)
    hf_order = ["contradiction", "entailment", "neutral"]
    labels = [int(y) for _, y in data.load_glue("mnli", "dev_mismatched", tmp_path, label_names=hf_order)]
    assert labels == [0, 1, 2]
    with pytest.raises(FileNotFoundError, match="dev_matched.tsv"):
        data.load_glue("mnli", "dev", data_dir=tmp_path)


def test_test_split_has_label_minus_one(tmp_path):
    write(tmp_path / "test.tsv", ["index\tsentence", "0\tgood film .", "1\tbad ."])
    labels = [int(y) for _, y in data.load_glue("sst2", "test", data_dir=tmp_path)]
    assert labels == [-1, -1]


def test_tfds_source_maps_features_splits_and_labels(monkeypatch):
    """The TFDS path (network only) with `tfds.load` replaced by an in-memory dataset."""
    import tensorflow_datasets as tfds

    calls = []

    def fake_load(name, split, data_dir=None):
        calls.append((name, split))
        return tf.data.Dataset.from_tensor_slices({
            "premise": ["p0", "p1"], "hypothesis": ["h0", "h1"],
            "label": tf.constant([0, 2], tf.int64), "idx": [0, 1]})

    monkeypatch.setattr(tfds, "load", fake_load)
    ds = data.load_glue("mnli", "dev_mismatched",
                        label_names=["contradiction", "entailment", "neutral"])
    got = [((p.numpy(), h.numpy()), int(y)) for (p, h), y in ds]
    assert calls == [("glue/mnli", "validation_mismatched")]
    assert got == [((b"p0", b"h0"), 1), ((b"p1", b"h1"), 0)]  # remapped to the model's order


@pytest.mark.integration
def test_sst2_real_files(shared_data):
    train = data.read_glue_tsv(shared_data / "sst2" / "train.tsv", "sst2")
    dev = data.load_glue("sst2", "dev", data_dir=shared_data / "sst2")
    assert len(train) == 67349
    assert np.bincount(train.labels()).tolist() == [29780, 37569]
    dev_labels = np.array([int(y) for _, y in dev])
    assert len(dev_labels) == 872 and set(dev_labels) == {0, 1}
    batches = data.to_model_inputs(dev, tiny_preprocessor(sequence_length=128), 32,
                                   bucket_boundaries=data.bucket_boundaries(128))
    widths = [x["token_ids"].shape[1] for x, _ in batches]
    assert sum(x for x in widths) / len(widths) < 64  # far below the fixed 128
