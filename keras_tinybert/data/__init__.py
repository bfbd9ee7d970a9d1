"""Task data and the general corpus, as `tf.data` pipelines.

GLUE (TFDS `glue/<task>` or a local GLUE folder):

    ds = kt.data.load_glue("sst2", "train", data_dir="../shared/data/sst2")
    train = kt.data.to_model_inputs(ds, teacher, 32, bucket_boundaries=[16, 32, 64])
    kt.data.evaluate(student, "sst2", data_dir=...)      # {"accuracy": ...}

General corpus (plain text, WikiText included):

    corpus = kt.data.text_corpus("wikitext-2/", teacher.preprocessor.tokenizer, 128)
"""

from keras_tinybert.data.corpus import sentences, text_corpus
from keras_tinybert.data.datasets import bucket_boundaries, corpus_dataset, task_datasets
from keras_tinybert.data.evaluate import evaluate, predict_logits
from keras_tinybert.data.glue import load_glue
from keras_tinybert.data.glue_tsv import (
    GlueTable, find_glue_file, read_glue_tsv, stream_glue_tsv)
from keras_tinybert.data.inputs import to_model_inputs, with_sequence_length
from keras_tinybert.data.labels import check_label_names, label_names_of, set_label_names
from keras_tinybert.data.metrics import (
    accuracy, f1, glue_metrics, matthews_corrcoef, pearson, spearman)
from keras_tinybert.data.tasks import GLUE_TASKS, TaskSpec, get_task
from keras_tinybert.data.teacher_logits import teacher_logits, with_teacher_logits

__all__ = [
    "GLUE_TASKS", "GlueTable", "TaskSpec", "accuracy", "bucket_boundaries", "check_label_names",
    "corpus_dataset", "evaluate",
    "f1", "find_glue_file", "get_task", "glue_metrics", "label_names_of", "load_glue",
    "matthews_corrcoef", "pearson", "predict_logits", "read_glue_tsv", "sentences",
    "set_label_names", "spearman", "stream_glue_tsv", "text_corpus", "to_model_inputs",
    "task_datasets", "teacher_logits", "with_sequence_length", "with_teacher_logits",
]
