"""Label parsing and label order (keras_tinybert.data.labels)."""

import pytest
import tensorflow as tf

from keras_tinybert import data
from keras_tinybert.testing import tiny_classifier

MNLI_ROWS = ["index\tsentence1\tsentence2\tgold_label",
             "0\ta\tb\tcontradiction", "1\tc\td\tentailment", "2\te\tf\tneutral"]


def test_parse_label_names_ids_and_scores():
    mnli, sst2, stsb = (data.get_task(t) for t in ("mnli", "sst2", "stsb"))
    assert [data.parse_label(mnli, v) for v in ("entailment", " neutral ", "contradiction", "2")] == [0, 1, 2, 2]
    assert data.parse_label(sst2, "1") == 1
    assert data.parse_label(stsb, "3.8") == pytest.approx(3.8)
    for value in ("maybe", "2", "-1"):
        with pytest.raises(ValueError, match=rf"f\.tsv:7: label '{value}' is not one of task 'sst2'"):
            data.parse_label(sst2, value, "f.tsv", 7)


def test_mnli_string_labels_follow_tfds_order(tmp_path):
    path = tmp_path / "dev_matched.tsv"
    path.write_text("\n".join(MNLI_ROWS) + "\n")
    assert data.GLUE_TASKS["mnli"].label_names == ("entailment", "neutral", "contradiction")
    assert data.read_glue_tsv(path, "mnli").labels().tolist() == [2, 0, 1]


def test_unknown_label_in_a_file_names_file_and_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\nx\tmaybe\n")
    table = data.read_glue_tsv(path, "sst2")
    with pytest.raises(ValueError, match=r"train\.tsv:2: label 'maybe'"):
        table.labels()


def test_reorder_labels_maps_ids_to_another_order_and_keeps_test_labels():
    examples = tf.data.Dataset.from_tensor_slices(
        ((tf.constant(["a", "b", "c", "d"]),), tf.constant([0, 1, 2, -1], tf.int64)))
    hf_order = ["contradiction", "entailment", "neutral"]  # TFDS: entailment, neutral, contradiction
    labels = [int(y) for _, y in data.reorder_labels(examples, "mnli", hf_order)]
    assert labels == [1, 2, 0, -1]
    assert data.reorder_labels(examples, "mnli", None) is examples
    with pytest.raises(ValueError, match="not a reordering"):
        data.reorder_labels(examples, "mnli", ["yes", "no", "maybe"])


def test_label_order_mismatch_prints_both_orders():
    model = tiny_classifier(num_classes=3)
    data.set_label_names(model, ["contradiction", "entailment", "neutral"])
    with pytest.raises(ValueError) as error:
        data.check_label_names("mnli", model)
    message = str(error.value)
    assert "['entailment', 'neutral', 'contradiction']" in message
    assert "['contradiction', 'entailment', 'neutral']" in message
    assert "label_names=<model order>" in message  # the same labels: reload in its order
    data.check_label_names(["contradiction", "entailment", "neutral"], model)  # same: fine
    with pytest.raises(ValueError, match="trained on other labels"):
        data.check_label_names("sst2", ["bad", "good"])


def test_label_names_travel_in_a_saved_models_metadata(tmp_path):
    (tmp_path / "metadata.json").write_text('{"label_names": ["positive", "negative"]}')
    assert data.label_names_of(tmp_path) == ["positive", "negative"]
    assert data.label_names_of(tmp_path / "student.keras") == ["positive", "negative"]
    with pytest.raises(ValueError, match=r"data : \['negative', 'positive'\]"):
        data.check_label_names("sst2", tmp_path)
    assert data.label_names_of(tmp_path / "elsewhere" / "student.keras") is None
