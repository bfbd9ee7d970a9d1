"""Labels: from GLUE's strings to ids, and the label order of data and model.

`parse_label` reads a GLUE label ("entailment", "1", "3.8") as an id in the task's
order (`tasks.py`); `reorder_labels` gives the ids of another order instead.

Label order: the data's must be the model's, or every metric is silently wrong. Users
of the paper's code fine-tuned MNLI teachers with one label order (contradiction,
entailment, neutral) and evaluated on data in another (TFDS: entailment, neutral,
contradiction). Here the label names travel with the model as a `label_names` attribute
(`set_label_names`) or as `"label_names"` in the `metadata.json` beside a saved model
(the student directory layout of `keras_tinybert.export`), and `check_label_names` turns
a mismatch into an error that prints both orders.
"""

import pathlib

import tensorflow as tf

from keras_tinybert.data.tasks import TaskSpec, get_task


def parse_label(spec, value, path="<data>", line="?"):
    """A GLUE label string ("entailment", "1", "3.8") -> id in `spec.label_names`.

    Raises ValueError naming the file and line for a label the task does not know.
    """
    value = value.strip()
    try:
        if spec.is_regression:
            return float(value)
        if value in spec.label_names:
            return spec.label_names.index(value)
        index = int(value)
        if 0 <= index < len(spec.label_names):
            return index
    except ValueError:
        pass
    raise ValueError(
        f"{path}:{line}: label {value!r} is not one of task {spec.name!r}'s labels "
        f"{list(spec.label_names or ['<float>'])} (or their ids); is this the right task?"
    )


def _order_table(spec, label_names):
    """A table from the task's label ids to those of `label_names`, or None."""
    if label_names is None or spec.is_regression:
        return None
    label_names = [str(n) for n in label_names]
    if sorted(label_names) != sorted(spec.label_names):
        raise ValueError(
            f"label_names {label_names} are not a reordering of task {spec.name!r}'s "
            f"labels {list(spec.label_names)}."
        )
    return tf.constant([label_names.index(n) for n in spec.label_names], tf.int64)


def reorder_labels(dataset, task, label_names):
    """`(texts, label)` examples with label ids in the order of `label_names`.

    `label_names` must be a reordering of the task's labels (e.g. a teacher fine-tuned
    with another order); `None` keeps the task's order. Test labels (-1) stay -1.
    """
    table = _order_table(get_task(task), label_names)
    if table is None:
        return dataset
    return dataset.map(
        lambda x, y: (x, tf.where(y >= 0, tf.gather(table, tf.maximum(y, 0)), y)))


def set_label_names(model, label_names):
    """Attach the class names, in logit order, to `model` (as `model.label_names`)."""
    model.label_names = [str(name) for name in label_names]
    return model


def label_names_of(model):
    """The label names of `model`, or `None` if it carries none.

    `model` is a Keras model (its `label_names` attribute), or the path of a saved
    model's directory or `metadata.json` (its `"label_names"` key).
    """
    if isinstance(model, (str, pathlib.Path)):
        from keras_tinybert.runs import read_metadata

        names = read_metadata(model).get("label_names")
    else:
        names = getattr(model, "label_names", None)
    return None if names is None else [str(name) for name in names]


def _names(task_or_names):
    if isinstance(task_or_names, (str, TaskSpec)):
        names = get_task(task_or_names).label_names
        return None if names is None else list(names)
    return None if task_or_names is None else [str(n) for n in task_or_names]


def check_label_names(data, model):
    """Raise if the data's label order differs from the model's.

    Args:
        data: a task (name or `TaskSpec`) or the data's label names, in id order.
        model: a model carrying `label_names`, a saved model's directory (its
            `metadata.json`), or a list of names. A model without label names is not
            checked (nothing to compare with).

    Raises:
        ValueError: the orders differ; the message prints both and how to fix it.
    """
    data_names = _names(data)
    if isinstance(model, (list, tuple)):
        model_names = [str(name) for name in model]
    else:
        model_names = label_names_of(model)
    if data_names is None or model_names is None or data_names == model_names:
        return
    fix = (
        "reload the data in the model's order with load_glue(..., label_names=<model "
        "order>)"
        if sorted(data_names) == sorted(model_names)
        else "this model was trained on other labels; use the right task or model"
    )
    raise ValueError(
        "Label order mismatch between data and model:\n"
        f"  data : {data_names}\n  model: {model_names}\n"
        f"Label id i means data[i] in the data but model[i] in the model; {fix}."
    )
