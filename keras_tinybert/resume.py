"""Survive interruption: resume a distillation run exactly where its backup left it.

Keras' `BackupAndRestore` restores the weights but restarts an interrupted epoch from
its first batch, so batches seen before the crash are trained on twice and the run
differs from an uninterrupted one. `fit_resumable` instead:

- saves the distiller (student, projections, optimizer state, and the dropout RNG
  state) every `save_freq` steps, atomically (write, then rename), so a SIGKILL at
  any moment leaves either the previous backup or the new one, never half of one;
- derives the position in training from the optimizer's step counter, restored with
  the weights: epoch, step = divmod(iterations, steps_per_epoch);
- feeds the data as one stream over all epochs (`dataset.repeat()`), skips the
  batches already trained on, and stops after exactly epochs × steps_per_epoch.

With a deterministic input order (shuffle with a fixed seed) and
`tf.config.experimental.enable_op_determinism()`, a resumed run ends with the same
weights as an uninterrupted one (a test kills a run with SIGKILL and checks this).
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

WEIGHTS = "backup.weights.h5"
STATE = "backup.json"


def _rng_variables(model):
    """Seed-generator states (dropout RNG): in `variables` but not in `weights`."""
    return [v for v in model.variables if "seed_generator" in v.path]


def _is_chief():
    """Whether this process writes backups (worker 0 / chief, or no cluster)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    return task.get("type", "chief") == "chief" or (
        task.get("type") == "worker"
        and task.get("index", 0) == 0
        and "chief" not in config.get("cluster", {})
    )


class StepBackup(keras.callbacks.Callback):
    """Save the whole training state every `save_freq` steps and at epoch ends."""

    def __init__(self, backup_dir, save_freq=100):
        super().__init__()
        self.backup_dir = str(backup_dir)
        self.save_freq = int(save_freq)

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) % self.save_freq == 0:
            save_backup(self.model, self.backup_dir)

    def on_epoch_end(self, epoch, logs=None):
        save_backup(self.model, self.backup_dir)


def save_backup(model, backup_dir):
    """Write weights + optimizer + RNG state, atomically; only the chief writes."""
    if not _is_chief():
        return
    os.makedirs(backup_dir, exist_ok=True)
    tmp = os.path.join(backup_dir, f"tmp.{WEIGHTS}")
    model.save_weights(tmp, overwrite=True)
    os.replace(tmp, os.path.join(backup_dir, WEIGHTS))
    state = {
        "step": int(model.optimizer.iterations.numpy()),
        "rng": [np.asarray(v).tolist() for v in _rng_variables(model)],
    }
    tmp = os.path.join(backup_dir, f"tmp.{STATE}")
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, os.path.join(backup_dir, STATE))


def restore_backup(model, backup_dir):
    """Load the last backup into `model`; return the step it was taken at (0: none)."""
    weights = os.path.join(backup_dir, WEIGHTS)
    state_path = os.path.join(backup_dir, STATE)
    if not os.path.exists(weights) or not os.path.exists(state_path):
        return 0
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(weights)
    with open(state_path) as f:
        state = json.load(f)
    for variable, value in zip(_rng_variables(model), state["rng"]):
        variable.assign(np.asarray(value, dtype=variable.dtype))
    step = int(model.optimizer.iterations.numpy())
    if step != state["step"]:
        raise RuntimeError(
            f"The backup in {backup_dir} is inconsistent: weights at step {step}, "
            f"state file at step {state['step']}. Delete the directory to restart."
        )
    return step


def steps_in(dataset):
    """Batches per epoch of a finite dataset (counted once if TF doesn't know)."""
    n = int(dataset.cardinality().numpy())
    if n == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "fit_resumable needs a finite dataset (one epoch); got an infinite one. "
            "Remove .repeat(): epochs are counted by fit_resumable itself."
        )
    if n == tf.data.UNKNOWN_CARDINALITY:
        n = int(dataset.reduce(0, lambda count, _: count + 1).numpy())
    if n == 0:
        raise ValueError("The training dataset is empty: nothing to distil.")
    return n


def fit_resumable(model, dataset, epochs, backup_dir, save_freq=100,
                  callbacks=(), **fit_kwargs):
    """`model.fit(dataset, epochs)` that resumes from `backup_dir` after a crash.

    Args:
        model: a compiled `kt.Distiller` (any compiled Keras model works).
        dataset: one epoch of batches, finite, in a deterministic order for exact
            resumption (e.g. ``ds.shuffle(n, seed=0)``).
        epochs: total epochs, counting those done before an interruption.
        backup_dir: where backups live; an existing backup is resumed from.
        save_freq: steps between backups.
        callbacks, **fit_kwargs: passed to `fit` (validation_data, verbose, ...).

    Returns:
        dict: `History.history` of this call, plus ``"resumed_from_step"``.
    """
    steps = steps_in(dataset)
    total = epochs * steps
    start = restore_backup(model, backup_dir)
    if start >= total:
        return {"resumed_from_step": start}
    epoch, done = divmod(start, steps)
    # One iterator over one stream: a shuffled dataset reshuffles per iterator, so
    # a second `fit` (a second iterator) would not see what an uninterrupted run
    # sees. After a mid-epoch resume the logged epochs are shifted by `done` steps;
    # `StopAtStep` ends training at exactly epochs × steps.
    h = model.fit(
        dataset.repeat().skip(start),
        initial_epoch=epoch,
        epochs=epochs + (1 if done else 0),
        steps_per_epoch=steps,
        callbacks=list(callbacks) + [StepBackup(backup_dir, save_freq),
                                     StopAtStep(total)],
        **fit_kwargs,
    )
    history = dict(h.history)
    history["resumed_from_step"] = start
    return history


class StopAtStep(keras.callbacks.Callback):
    """Stop training once the optimizer has taken `total` steps."""

    def __init__(self, total):
        super().__init__()
        self.total = int(total)

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) >= self.total:
            self.model.stop_training = True
