"""A model's GLUE metrics on a task's dev set (keras_tinybert.data.evaluate)."""

import numpy as np
import pytest

from keras_tinybert import data
from keras_tinybert.testing import tiny_classifier, vary_weights

SENTENCES = ["a good film", "bad plot", "the music was really very very good and the actors were great",
             "boring", "i loved it", "the worst movie ever", "fun", "dull and slow"]
LABELS = [1, 0, 1, 0, 1, 0, 1, 0]


def model_and_folder(tmp_path):
    model = vary_weights(tiny_classifier(seed=3), SENTENCES)
    rows = [f"{s}\t{y}" for s, y in zip(SENTENCES, LABELS)]
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    return model, tmp_path


def numpy_accuracy(model):
    logits = model.predict(SENTENCES, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == np.array(LABELS)))


def test_evaluate_a_task_matches_numpy_accuracy(tmp_path):
    model, folder = model_and_folder(tmp_path)
    expected = numpy_accuracy(model)
    assert 0.0 < expected < 1.0  # the logits depend on the sentence
    assert data.evaluate(model, "sst2", data_dir=folder) == {"accuracy": pytest.approx(expected)}
    data.set_label_names(model, ["positive", "negative"])
    with pytest.raises(ValueError, match="Label order mismatch"):
        data.evaluate(model, "sst2", data_dir=folder)


def test_predict_logits_and_evaluate_given_batches(tmp_path):
    model, folder = model_and_folder(tmp_path)
    dev = data.load_glue("sst2", "dev", folder)
    logits, labels = data.predict_logits(model, data.to_model_inputs(dev, model, 3))
    np.testing.assert_allclose(logits, model.predict(SENTENCES, verbose=0), atol=1e-5)
    assert labels.tolist() == LABELS  # fixed-length batches keep the order
    bucketed = data.to_model_inputs(dev, model, 3, bucket_boundaries=[4, 8])
    assert data.evaluate(model, bucketed, task="sst2") == {
        "accuracy": pytest.approx(numpy_accuracy(model))}
    with pytest.raises(ValueError, match="needs task="):
        data.evaluate(model, bucketed)
