"""GLUE as `tf.data`: from TFDS (`glue/<task>`) or from a local GLUE folder.

`load_glue(task, split)` gives a dataset of `(texts, label)` where `texts` is a tuple of
one string (single sentences) or two (pairs) — what keras-hub text-classifier
preprocessors take — and `label` is an int64 id in the task's label order (float32 for
STS-B). `to_model_inputs` (inputs.py) tokenises and batches it.
"""

import tensorflow as tf

from keras_tinybert.data.downloads import glue_from_tfds
from keras_tinybert.data.glue_tsv import find_glue_file, read_glue_tsv
from keras_tinybert.data.labels import reorder_labels
from keras_tinybert.data.tasks import get_task, tfds_split


def table_dataset(table):
    """`(texts, label)` examples of a `GlueTable` (label -1 for a test split)."""
    texts = tuple(tf.constant(column, tf.string) for column in table.texts())
    if table.label_column is None:
        labels = tf.fill([len(table)], tf.constant(-1, tf.int64))
    else:
        labels = tf.constant(table.labels())
    return tf.data.Dataset.from_tensor_slices((texts, labels))


def _from_tsv(spec, split, data_dir):
    return table_dataset(read_glue_tsv(find_glue_file(data_dir, spec, split), spec))


def _from_tfds(spec, split, tfds_data_dir):
    ds = glue_from_tfds(spec, tfds_split(spec, split), tfds_data_dir)
    dtype = tf.float32 if spec.is_regression else tf.int64
    return ds.map(
        lambda ex: (tuple(ex[f] for f in spec.tfds_text), tf.cast(ex["label"], dtype)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def load_glue(task, split="train", data_dir=None, *, label_names=None,
              tfds_data_dir=None):
    """One GLUE split as a `tf.data.Dataset` of `(texts, label)`.

    Args:
        task: "cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"
            (GLUE folder names such as "SST-2" work too).
        split: "train", "dev" (= "validation"), "test"; MNLI has "dev_matched" and
            "dev_mismatched" ("dev" means matched).
        data_dir: a local GLUE folder (the task folder holding `train.tsv`, or the
            GLUE root holding `SST-2/`); `None` downloads `glue/<task>` with TFDS
            (offline, the error says which folder to create instead).
        label_names: give labels ids in this order instead of the task's (TFDS)
            order — e.g. a teacher's `label_names` (see `labels.check_label_names`).
        tfds_data_dir: where TFDS keeps its downloads (TFDS default if None).

    Test splits have no labels: their label is -1.
    """
    spec = get_task(task)
    if data_dir is not None:
        ds = _from_tsv(spec, split, data_dir)
    else:
        ds = _from_tfds(spec, split, tfds_data_dir)
    return reorder_labels(ds, spec, label_names)
