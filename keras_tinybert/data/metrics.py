"""How GLUE scores each task, and the metrics in NumPy: accuracy, F1, Matthews
correlation, Pearson, Spearman.

Written out (a few lines each) so the package needs neither scikit-learn nor SciPy;
the tests check them against hand-computed values.
"""

import numpy as np

from keras_tinybert.data.tasks import get_task

# Metric names, as `glue_metrics` returns them.
ACCURACY = "accuracy"
F1 = "f1"
MATTHEWS = "matthews_corrcoef"
PEARSON = "pearson"
SPEARMAN = "spearman"

# GLUE's metrics per task (Wang et al. 2019), the headline metric first.
TASK_METRICS = {
    "cola": (MATTHEWS,),
    "sst2": (ACCURACY,),
    "mrpc": (F1, ACCURACY),
    "stsb": (PEARSON, SPEARMAN),
    "qqp": (F1, ACCURACY),
    "mnli": (ACCURACY,),
    "qnli": (ACCURACY,),
    "rte": (ACCURACY,),
    "wnli": (ACCURACY,),
}


def metric_names(task):
    """The metrics `task` is scored with, its headline metric first.

    A task outside GLUE is scored like its kind: correlations for regression,
    accuracy for classification.
    """
    spec = get_task(task)
    default = (PEARSON, SPEARMAN) if spec.is_regression else (ACCURACY,)
    return TASK_METRICS.get(spec.name, default)


def accuracy(y_true, y_pred):
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def f1(y_true, y_pred):
    """Binary F1 of the positive class (label id 1), as GLUE scores MRPC and QQP."""
    y_true, y_pred = np.asarray(y_true) == 1, np.asarray(y_pred) == 1
    tp = np.sum(y_true & y_pred)
    denominator = 2 * tp + np.sum(y_true != y_pred)
    return float(2 * tp / denominator) if denominator else 0.0


def matthews_corrcoef(y_true, y_pred):
    """Matthews correlation of binary labels (CoLA); 0 when a margin is empty."""
    t, p = np.asarray(y_true) == 1, np.asarray(y_pred) == 1
    tp, tn = float(np.sum(t & p)), float(np.sum(~t & ~p))
    fp, fn = float(np.sum(~t & p)), float(np.sum(t & ~p))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / denominator) if denominator else 0.0


def pearson(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denominator) if denominator else 0.0


def _ranks(x):
    """Ranks 1..n, ties sharing their average rank (as Spearman needs)."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def spearman(x, y):
    return pearson(_ranks(x), _ranks(y))


_FUNCTIONS = {
    ACCURACY: accuracy,
    F1: f1,
    MATTHEWS: matthews_corrcoef,
    PEARSON: pearson,
    SPEARMAN: spearman,
}


def glue_metrics(task, y_true, logits):
    """The task's GLUE metrics from model outputs: argmax of logits, or the score."""
    spec = get_task(task)
    logits = np.asarray(logits)
    if spec.is_regression:
        y_pred = logits.reshape(len(logits), -1)[:, 0]
    else:
        y_pred = np.argmax(logits.reshape(len(logits), -1), axis=-1)
    return {name: _FUNCTIONS[name](y_true, y_pred) for name in metric_names(spec)}
