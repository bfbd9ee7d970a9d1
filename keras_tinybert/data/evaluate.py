"""`evaluate(model, task)`: a model's GLUE metric on a task's dev set (or any dataset)."""

import numpy as np

from keras_tinybert.data.glue import load_glue
from keras_tinybert.data.inputs import BUCKET_LENGTHS, to_model_inputs
from keras_tinybert.data.labels import check_label_names, label_names_of
from keras_tinybert.data.metrics import glue_metrics
from keras_tinybert.data.tasks import TaskSpec, get_task
from keras_tinybert.inference import inference_forward


def predict_logits(model, inputs):
    """Logits and labels over a dataset of preprocessed `(x, y)` batches."""
    forward = inference_forward(model)
    logits, labels = [], []
    for x, y in inputs:
        logits.append(np.asarray(forward(x)))
        labels.append(np.asarray(y))
    return np.concatenate(logits), np.concatenate(labels)


def evaluate(
    model,
    task_or_dataset,
    split="dev",
    *,
    task=None,
    data_dir=None,
    preprocessor=None,
    batch_size=64,
    sequence_length=None,
    bucket_boundaries=BUCKET_LENGTHS,
):
    """The task's GLUE metrics (dict name -> value) for `model`.

    Args:
        model: a keras-hub classifier (logits out; one output for STS-B). If it carries
            `label_names`, they are checked against the task's label order.
        task_or_dataset: a task name (its `split` is loaded, from `data_dir` or TFDS,
            and tokenised with `preprocessor`) or a dataset of preprocessed `(x, y)`
            batches (then `task=` names the metric).
        split: "dev" by default; MNLI: "dev_matched" / "dev_mismatched".
        data_dir: local GLUE folder (else TFDS).
        preprocessor: default the model's own.
        batch_size, sequence_length, bucket_boundaries: as in `to_model_inputs`.
    """
    if isinstance(task_or_dataset, (str, TaskSpec)):
        spec = get_task(task_or_dataset)
        check_label_names(spec, model)
        texts = load_glue(spec, split, data_dir)
        inputs = to_model_inputs(
            texts, preprocessor or model, batch_size,
            sequence_length=sequence_length, bucket_boundaries=bucket_boundaries,
        )
    else:
        if task is None:
            raise ValueError("evaluate(model, dataset) needs task=... to pick the metric.")
        spec, inputs = get_task(task), task_or_dataset
        if label_names_of(model) is not None:
            check_label_names(spec, model)
    logits, labels = predict_logits(model, inputs)
    return glue_metrics(spec, labels, logits)
