"""Task data and the general corpus, as `tf.data` pipelines.

The entry point, for fine-tuning and every distillation stage (`datasets.py`):

    train, dev = kt.data.task_datasets("sst2", teacher, config)      # a kt.Config
    corpus = kt.data.corpus_dataset("wikitext-103", teacher, config)  # or text files

and its steps, each usable alone, in the order the data flows:

    ds = kt.data.load_glue("sst2", "train", data_dir="../shared/data/sst2")  # or TFDS
    ds = kt.data.with_teacher_logits(ds, teacher, sequence_length=64)      # prediction
    train = kt.data.to_model_inputs(ds, teacher, 32, sequence_length=64,
                                    bucket_boundaries=kt.data.bucket_boundaries(64))
    kt.data.evaluate(student, "sst2", data_dir=...)      # {"accuracy": ...}

Modules: `tasks` (the GLUE task table), `glue_tsv` / `glue` / `downloads` (loading),
`labels`, `inputs` (tokenising and length buckets), `teacher_logits`, `corpus`,
`metrics`, `evaluate`; batch keys in `keras_tinybert.layout`.
"""

from keras_tinybert.data.corpus import sentences, text_corpus
from keras_tinybert.data.datasets import corpus_dataset, task_datasets
from keras_tinybert.data.downloads import CORPORA, corpus_files
from keras_tinybert.data.evaluate import evaluate, predict_logits
from keras_tinybert.data.glue import load_glue
from keras_tinybert.data.glue_tsv import (
    GlueTable, find_glue_file, read_glue_tsv, stream_glue_tsv)
from keras_tinybert.data.inputs import (
    bucket_boundaries, packed_keys, to_model_inputs, with_sequence_length)
from keras_tinybert.data.labels import (
    check_label_names, label_names_of, parse_label, reorder_labels, set_label_names)
from keras_tinybert.data.metrics import (
    accuracy, f1, glue_metrics, matthews_corrcoef, metric_names, pearson, spearman)
from keras_tinybert.data.tasks import GLUE_TASKS, TaskSpec, get_task
from keras_tinybert.data.teacher_logits import teacher_logits, with_teacher_logits

__all__ = [
    "CORPORA", "GLUE_TASKS", "GlueTable", "TaskSpec", "accuracy", "bucket_boundaries",
    "check_label_names", "corpus_dataset", "corpus_files", "evaluate", "f1",
    "find_glue_file", "get_task", "glue_metrics", "label_names_of", "load_glue",
    "matthews_corrcoef", "metric_names", "packed_keys", "parse_label", "pearson",
    "predict_logits", "read_glue_tsv", "reorder_labels", "sentences", "set_label_names",
    "spearman", "stream_glue_tsv", "task_datasets", "teacher_logits", "text_corpus",
    "to_model_inputs", "with_sequence_length", "with_teacher_logits",
]
