"""Label order: the data's must be the model's, or every metric is silently wrong.

Users of the paper's code fine-tuned MNLI teachers with one label order (contradiction,
entailment, neutral) and evaluated on data in another (TFDS: entailment, neutral,
contradiction). Here the label names travel with the model as a `label_names` attribute
(`set_label_names`) or as `"label_names"` in the `metadata.json` beside a saved model
(the student directory layout of `keras_tinybert.export`), and `check_label_names` turns
a mismatch into an error that prints both orders.
"""

import json
import pathlib

from keras_tinybert.data.tasks import TaskSpec, get_task


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
        path = pathlib.Path(model)
        path = path / "metadata.json" if path.is_dir() else path
        if path.suffix != ".json":
            path = path.with_name("metadata.json")
        names = json.loads(path.read_text()).get("label_names") if path.exists() else None
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
