"""The one data entry point: a run's training and evaluation batches from its config.

    train, dev = kt.data.task_datasets("sst2", teacher, config)   # task stages, fine-tuning
    train = kt.data.corpus_dataset(config.corpus, teacher, config)  # general distillation

Both fine-tuning and every distillation stage call these, so the steps are decided
here once, in the order the data flows:

1. load: a local GLUE folder (`config.data_dir`) or TFDS `glue/<task>`, or
   `config.train_file` for training; a corpus from files or by name;
2. label checks: the labels parse as the task's, in the model's label order;
3. the prediction stage's teacher-logit cache (`config.cache_teacher`), computed once
   on the examples before any shuffling;
4. shuffle the training examples (never cached after the shuffle, so every epoch sees
   a new order), tokenise with `model`'s preprocessor and batch by length with the one
   bucket rule (`bucket_boundaries`).

Batches follow `keras_tinybert.layout`.
"""

import time

from keras_tinybert.data.corpus import text_corpus
from keras_tinybert.data.glue import load_glue, table_dataset
from keras_tinybert.data.glue_tsv import read_glue_tsv
from keras_tinybert.data.inputs import bucket_boundaries, to_model_inputs
from keras_tinybert.data.labels import check_label_names
from keras_tinybert.data.tasks import get_task
from keras_tinybert.data.teacher_logits import with_teacher_logits

# Training examples are shuffled in a buffer of this many: 10,000 for distillation,
# 20,000 for fine-tuning (what each used before this entry point, so that published
# runs reproduce batch for batch).
SHUFFLE_BUFFER = 10_000
FINETUNE_SHUFFLE_BUFFER = 20_000


def _task_examples(spec, config):
    """Raw `(texts, label)` train and dev examples of the task."""
    if config.train_file:
        train = table_dataset(read_glue_tsv(config.train_file, spec,
                                            skip_malformed=config.skip_malformed))
    else:
        train = load_glue(spec, "train", config.data_dir)
    if config.max_examples:
        train = train.take(config.max_examples)
    return train, load_glue(spec, "dev", config.data_dir)


def task_datasets(task, model, config, log=print):
    """`(train, dev)` batches of a GLUE task for `model` (its preprocessor tokenises).

    `train` is shuffled each epoch and, for the prediction stage with
    `config.cache_teacher`, carries the teacher's logits (`model` is the teacher);
    `dev` is cached. See `kt.Config` for the options read.

    Raises:
        ValueError: `model` carries label names in another order than the task's.
        FileNotFoundError: no data (the message says which folder to create).
    """
    spec = get_task(task)
    check_label_names(spec, model)
    raw_train, raw_dev = _task_examples(spec, config)
    if config.stage == "prediction" and config.cache_teacher:
        start = time.time()
        raw_train = with_teacher_logits(raw_train, model, sequence_length=config.seq_len)
        log(f"the teacher's logits computed once, in {time.time() - start:.0f} s "
            f"(cache_teacher=False / --no-cache-teacher runs the teacher every epoch)")
    buckets = bucket_boundaries(config.seq_len)
    shuffle = FINETUNE_SHUFFLE_BUFFER if config.stage == "finetune" else SHUFFLE_BUFFER
    train = to_model_inputs(raw_train, model, config.batch_size,
                            sequence_length=config.seq_len, bucket_boundaries=buckets,
                            shuffle_buffer=shuffle, seed=config.seed)
    dev = to_model_inputs(raw_dev, model, config.batch_size,
                          sequence_length=config.seq_len, bucket_boundaries=buckets)
    return train, dev.cache()


def corpus_dataset(files, model, config):
    """Packed plain-text batches for general distillation (no labels).

    `files`: text files, globs, folders of `*.txt` or a corpus name ("wikitext-103",
    downloaded once). The batches have the input keys of `model`'s preprocessor.
    """
    train = text_corpus(files, model, config.seq_len, config.batch_size, seed=config.seed)
    if config.max_examples:
        train = train.take(max(1, config.max_examples // config.batch_size))
    return train
