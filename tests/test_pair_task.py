"""A sentence-pair task end to end through the command line: fine-tune a teacher on an
RTE-shaped task whose label lies in the second sentence only, distil a student, export
it to a SavedModel, and serve both sentences: the served accuracy on pairs equals
Keras', and feeding the first sentence alone falls to chance."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_tinybert import cli, runs, testing
from keras_tinybert import export as kt_export

NOUNS = ["film", "movie", "story", "plot", "music", "script", "scene", "actors"]
POSITIVE = ["good", "great", "funny", "brilliant", "charming", "beautiful"]
NEGATIVE = ["bad", "terrible", "boring", "dull", "awful", "stupid"]


def _pairs(count, seed):
    """(premise, hypothesis, label): the premise is a neutral phrase; the hypothesis's
    adjective alone decides entailment."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        label = int(rng.integers(2))
        premise = f"the {rng.choice(NOUNS)} was {rng.choice(['long', 'short', 'slow', 'fast'])}"
        hypothesis = f"it is {rng.choice(POSITIVE if label == 0 else NEGATIVE)}"
        rows.append((premise, hypothesis, ["entailment", "not_entailment"][label]))
    return rows


def _write_rte(folder, split, rows):
    lines = ["index\tsentence1\tsentence2\tlabel"]
    lines += [f"{i}\t{a}\t{b}\t{y}" for i, (a, b, y) in enumerate(rows)]
    (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_distilled_pair_student_serves_both_sentences(tmp_path, capsys):
    data = tmp_path / "RTE"
    data.mkdir()
    _write_rte(data, "train", _pairs(256, seed=0))
    dev = _pairs(96, seed=1)
    _write_rte(data, "dev", dev)
    testing.tiny_classifier(num_layers=2, seed=1).save(tmp_path / "pretrained.keras")
    common = ["--task", "rte", "--data-dir", str(data), "--seq-len", "32", "--batch-size", "16",
              "--lr", "3e-3"]
    assert cli.main(["finetune-teacher", "--model", str(tmp_path / "pretrained.keras"),
                     "--epochs", "4", "--output", str(tmp_path / "teachers"), *common]) == 0
    (teacher,) = (tmp_path / "teachers").glob("teacher-rte-*")
    assert json.loads((teacher / "summary.json").read_text())["dev"]["accuracy"] > 0.9
    assert cli.main(["distill", "--stage", "prediction", "--teacher", str(teacher),
                     "--student-shape", "1L-32H-64I", "--epochs", "3",
                     "--output", str(tmp_path / "students"), *common]) == 0
    (student,) = (tmp_path / "students").glob("distill-prediction-*")
    metadata = runs.read_metadata(student)
    assert metadata["task"] == "rte" and metadata["text_fields"] == ["sentence1", "sentence2"]

    out = tmp_path / "serving" / "rte"
    assert cli.main(["export", "--model", str(student), "--format", "saved_model",
                     "--output", str(out), "--data", str(data), "--num-verify", "96"]) == 0
    assert "agreement" in capsys.readouterr().out
    version = out / "1"
    assert json.loads(kt_export.metadata_path(version).read_text())["raw_text_inputs"] == [
        "sentence1", "sentence2"]
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    premises, hypotheses, labels = (list(column) for column in zip(*dev))
    truth = np.array([label == "not_entailment" for label in labels], dtype=int)
    served = serve(sentence1=tf.constant(premises),
                   sentence2=tf.constant(hypotheses))["logits"].numpy().argmax(-1)
    model = runs.load_model(student)
    keras_pairs = np.asarray(model(model.preprocessor(
        x=(tf.constant(premises), tf.constant(hypotheses))))).argmax(-1)
    alone = np.asarray(model(model.preprocessor(x=tf.constant(premises)))).argmax(-1)
    served_accuracy = (served == truth).mean()
    print(f"pairs served {served_accuracy:.3f}, premise alone {(alone == truth).mean():.3f}")
    np.testing.assert_array_equal(served, keras_pairs)  # the same predictions as Keras
    assert served_accuracy > 0.9                          # the student learnt from the pairs
    assert abs((alone == truth).mean() - 0.5) < 0.2      # the premise alone is chance
