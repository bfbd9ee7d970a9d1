"""GLUE loading, label order, batching, metrics and evaluate (keras_tinybert.data)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_tinybert import data
from keras_tinybert.testing import tiny_classifier, tiny_preprocessor


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


SST2_ROWS = ["sentence\tlabel", "a good film \t1", "bad plot \t0",
             "the music was really very very good and the actors were great \t1"]
RTE_ROWS = ["index\tsentence1\tsentence2\tlabel", "0\tit was fun .\tit was good .\tentailment",
            "1\the hated it .\the loved it .\tnot_entailment"]
MNLI_ROWS = ["index\tsentence1\tsentence2\tgold_label",
             "0\ta\tb\tcontradiction", "1\tc\td\tentailment", "2\te\tf\tneutral"]


def test_read_glue_tsv_single_pair_and_headerless(tmp_path):
    table = data.read_glue_tsv(write(tmp_path / "s" / "train.tsv", SST2_ROWS), "sst2")
    assert len(table) == 3 and table.text_columns == (0,)
    assert table.labels().tolist() == [1, 0, 1]
    rte = data.read_glue_tsv(write(tmp_path / "r" / "dev.tsv", RTE_ROWS), "RTE")
    assert rte.texts() == [["it was fun .", "he hated it ."], ["it was good .", "he loved it ."]]
    assert rte.labels().tolist() == [0, 1]  # entailment, not_entailment (TFDS order)
    cola = write(tmp_path / "c" / "train.tsv", ["gj04\t1\t\tgood film .", "gj04\t0\t*\tfilm good the ."])
    table = data.read_glue_tsv(cola, "cola")
    assert table.texts() == [["good film .", "film good the ."]] and table.labels().tolist() == [1, 0]
    cola_test = write(tmp_path / "c" / "test.tsv", ["index\tsentence", "0\tgood film .", "1\tfilm the ."])
    table = data.read_glue_tsv(cola_test, "cola")
    assert table.texts() == [["good film .", "film the ."]] and table.label_column is None
    with pytest.raises(ValueError, match="no label column"):
        table.labels()


def test_mnli_string_labels_follow_tfds_order(tmp_path):
    table = data.read_glue_tsv(write(tmp_path / "dev_matched.tsv", MNLI_ROWS), "mnli")
    assert data.GLUE_TASKS["mnli"].label_names == ("entailment", "neutral", "contradiction")
    assert table.labels().tolist() == [2, 0, 1]


def test_malformed_row_names_file_and_line(tmp_path):
    path = write(tmp_path / "train.tsv", SST2_ROWS[:2] + ["a tab\tin the\ttext"])
    with pytest.raises(ValueError, match=r"train\.tsv:3: 3 tab-separated fields, expected 2"):
        data.read_glue_tsv(path, "sst2")
    assert len(data.read_glue_tsv(path, "sst2", skip_malformed=True)) == 1


def test_empty_file_and_unknown_label_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        data.read_glue_tsv(write(tmp_path / "a" / "train.tsv", []), "sst2")
    with pytest.raises(ValueError, match="empty"):
        data.read_glue_tsv(write(tmp_path / "b" / "train.tsv", ["sentence\tlabel"]), "sst2")
    table = data.read_glue_tsv(write(tmp_path / "c" / "train.tsv", ["sentence\tlabel", "x\tmaybe"]), "sst2")
    with pytest.raises(ValueError, match=r"train\.tsv:2: label 'maybe'"):
        table.labels()


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


def test_label_order_mismatch_prints_both_orders():
    model = tiny_classifier(num_classes=3)
    data.set_label_names(model, ["contradiction", "entailment", "neutral"])
    with pytest.raises(ValueError) as error:
        data.check_label_names("mnli", model)
    message = str(error.value)
    assert "['entailment', 'neutral', 'contradiction']" in message
    assert "['contradiction', 'entailment', 'neutral']" in message
    data.check_label_names(["contradiction", "entailment", "neutral"], model)  # same: fine


def test_label_names_travel_in_a_saved_models_metadata(tmp_path):
    (tmp_path / "metadata.json").write_text('{"label_names": ["positive", "negative"]}')
    assert data.label_names_of(tmp_path) == ["positive", "negative"]
    assert data.label_names_of(tmp_path / "student.keras") == ["positive", "negative"]
    with pytest.raises(ValueError, match=r"data : \['negative', 'positive'\]"):
        data.check_label_names("sst2", tmp_path)
    assert data.label_names_of(tmp_path / "elsewhere" / "student.keras") is None


def test_metrics_against_hand_computed_values():
    y, p = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    assert data.accuracy(y, p) == pytest.approx(0.6)
    assert data.f1(y, p) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # tp=2, fp=1, fn=1
    assert data.matthews_corrcoef(y, p) == pytest.approx((2 * 1 - 1 * 1) / np.sqrt(3 * 3 * 2 * 2))
    assert data.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(0.9933992677987828)
    # Ranks with ties: x -> [1, 2.5, 2.5, 4], y -> [1, 2, 3, 4].
    assert data.spearman([1, 5, 5, 9], [0, 1, 2, 3]) == pytest.approx(0.9486832980505138)
    assert data.glue_metrics("stsb", [1.0, 2.0, 3.0], [[2.0], [4.0], [7.0]])["pearson"] == pytest.approx(0.99339926)


def _pairs_dataset():
    texts = ["good", "a good film", "the music was really good and the actors were great " * 2,
             "bad", "the plot was dull", "fun"]
    return tf.data.Dataset.from_tensor_slices(((tf.constant(texts),), tf.range(6, dtype=tf.int64)))


def test_dynamic_padding_pads_each_batch_to_its_longest():
    preprocessor = tiny_preprocessor(sequence_length=64)
    fixed = {int(y): x["token_ids"].numpy() for xs, ys in data.to_model_inputs(_pairs_dataset(), preprocessor, 2)
             for x, y in [(dict(token_ids=xs["token_ids"][i]), ys[i]) for i in range(len(ys))]}
    assert all(len(ids) == 64 for ids in fixed.values())
    widths = []
    for x, y in data.to_model_inputs(_pairs_dataset(), preprocessor, 2, bucket_boundaries=[8, 16]):
        mask = x["padding_mask"].numpy()
        assert mask.shape[1] == mask.sum(axis=1).max()  # padded to the batch's longest
        widths.append(mask.shape[1])
        for row, label in zip(x["token_ids"].numpy(), y.numpy()):
            np.testing.assert_array_equal(row[row != 0], fixed[label][fixed[label] != 0])
    # Lengths with [CLS]/[SEP]: good 3, a good film 5, long 22, bad 3, the plot was dull 6,
    # fun 3. Bucket < 8 batches (good, a good film), (bad, plot), (fun); >= 16: (long).
    assert sorted(widths) == [3, 5, 6, 22]
    batches = list(data.to_model_inputs(_pairs_dataset(), preprocessor, 4, sequence_length=16,
                                        drop_remainder=True))
    assert len(batches) == 1 and batches[0][0]["token_ids"].shape == (4, 16)


def test_evaluate_matches_manual_accuracy(tmp_path):
    write(tmp_path / "dev.tsv", SST2_ROWS)
    model = tiny_classifier(seed=3)
    result = data.evaluate(model, "sst2", data_dir=tmp_path)
    logits = model.predict(["a good film ", "bad plot ",
                            "the music was really very very good and the actors were great "], verbose=0)
    expected = np.mean(np.argmax(logits, -1) == np.array([1, 0, 1]))
    assert result == {"accuracy": pytest.approx(expected)}
    data.set_label_names(model, ["positive", "negative"])
    with pytest.raises(ValueError, match="Label order mismatch"):
        data.evaluate(model, "sst2", data_dir=tmp_path)


@pytest.mark.integration
def test_sst2_real_files(shared_data):
    train = data.read_glue_tsv(shared_data / "sst2" / "train.tsv", "sst2")
    dev = data.load_glue("sst2", "dev", data_dir=shared_data / "sst2")
    assert len(train) == 67349
    assert np.bincount(train.labels()).tolist() == [29780, 37569]
    dev_labels = np.array([int(y) for _, y in dev])
    assert len(dev_labels) == 872 and set(dev_labels) == {0, 1}
    batches = data.to_model_inputs(dev, tiny_preprocessor(sequence_length=128), 32,
                                   bucket_boundaries=[16, 32, 64])
    widths = [x["token_ids"].shape[1] for x, _ in batches]
    assert sum(x for x in widths) / len(widths) < 64  # far below the fixed 128


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


def test_pairs_are_packed_as_two_segments(tmp_path):
    write(tmp_path / "train.tsv", RTE_ROWS)
    ds = data.load_glue("rte", "train", data_dir=tmp_path)
    for mode in ({}, {"bucket_boundaries": [8]}):
        x, y = next(iter(data.to_model_inputs(ds, tiny_preprocessor(), 2, **mode)))
        segments, mask = x["segment_ids"].numpy(), x["padding_mask"].numpy()
        assert y.numpy().tolist() == [0, 1]
        # "it was fun ." / "it was good .": [CLS] 4 [SEP] | 4 [SEP] -> 6 zeros, 5 ones.
        assert segments[0][mask[0]].tolist() == [0] * 6 + [1] * 5
