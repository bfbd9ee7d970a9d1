"""GLUE metrics and which task uses which (keras_tinybert.data.metrics)."""

import numpy as np
import pytest

from keras_tinybert import data


def test_metrics_against_hand_computed_values():
    y, p = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    assert data.accuracy(y, p) == pytest.approx(0.6)
    assert data.f1(y, p) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # tp=2, fp=1, fn=1
    assert data.matthews_corrcoef(y, p) == pytest.approx((2 * 1 - 1 * 1) / np.sqrt(3 * 3 * 2 * 2))
    assert data.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(0.9933992677987828)
    # Ranks with ties: x -> [1, 2.5, 2.5, 4], y -> [1, 2, 3, 4].
    assert data.spearman([1, 5, 5, 9], [0, 1, 2, 3]) == pytest.approx(0.9486832980505138)
    assert data.glue_metrics("stsb", [1.0, 2.0, 3.0], [[2.0], [4.0], [7.0]])["pearson"] == pytest.approx(0.99339926)


def test_each_task_is_scored_as_glue_scores_it():
    headline = {task: data.metric_names(task)[0] for task in data.GLUE_TASKS}
    assert headline == {"cola": "matthews_corrcoef", "sst2": "accuracy", "mrpc": "f1",
                        "stsb": "pearson", "qqp": "f1", "mnli": "accuracy",
                        "qnli": "accuracy", "rte": "accuracy", "wnli": "accuracy"}
    assert data.metric_names("MRPC") == ("f1", "accuracy") == data.get_task("mrpc").metrics
    assert data.metric_names("stsb") == ("pearson", "spearman")


def test_glue_metrics_from_logits():
    logits = [[2.0, 1.0], [0.0, 3.0], [1.0, -1.0], [0.5, 0.6]]  # argmax 0, 1, 0, 1
    got = data.glue_metrics("mrpc", [0, 1, 1, 1], logits)
    assert got == {"f1": pytest.approx(2 * 2 / (2 * 2 + 0 + 1)), "accuracy": pytest.approx(0.75)}
    assert data.glue_metrics("cola", [0, 1, 0, 1], logits) == {"matthews_corrcoef": pytest.approx(1.0)}
