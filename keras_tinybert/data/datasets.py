"""The one data entry point: a run's training and evaluation batches from its config.

    train, dev = kt.data.task_datasets("sst2", teacher, config)   # task stages, fine-tuning
    train = kt.data.corpus_dataset(config.corpus, teacher, config)  # general distillation

Both fine-tuning and every distillation stage call these, so loading (TFDS or a local
GLUE folder, or `config.train_file`), label checks, tokenisation with `model`'s
preprocessor, length bucketing, shuffling (never cached after the shuffle, so every
epoch sees a new order) and the prediction stage's teacher-logit cache are decided here
once. Batches follow `keras_tinybert.layout`.
"""

import time

from keras_tinybert.data import corpus as _corpus
from keras_tinybert.data.glue import load_glue, table_dataset
from keras_tinybert.data.glue_tsv import read_glue_tsv
from keras_tinybert.data.inputs import to_model_inputs
from keras_tinybert.data.teacher_logits import with_teacher_logits

SHUFFLE_BUFFER = 10_000
# Dynamic padding: batches are formed among examples of similar length.
BUCKET_LENGTHS = (16, 32, 64)


def bucket_boundaries(sequence_length):
    """The length buckets below `sequence_length` (the one bucket rule)."""
    return [b for b in BUCKET_LENGTHS if b < sequence_length]


def task_datasets(task, model, config, log=print):
    """`(train, dev)` batches of a GLUE task for `model` (its preprocessor tokenises).

    `train` is shuffled each epoch and, for the prediction stage with
    `config.cache_teacher`, carries the teacher's logits (`model` is the teacher);
    `dev` is cached. See `kt.Config` for the options read.
    """
    if config.train_file:
        raw_train = table_dataset(read_glue_tsv(config.train_file, task,
                                                skip_malformed=config.skip_malformed))
    else:
        raw_train = load_glue(task, "train", config.data_dir)
    raw_dev = load_glue(task, "dev", config.data_dir)
    if config.max_examples:
        raw_train = raw_train.take(config.max_examples)
    if config.stage == "prediction" and config.cache_teacher:
        start = time.time()
        raw_train = with_teacher_logits(raw_train, model, sequence_length=config.seq_len)
        log(f"the teacher's logits computed once, in {time.time() - start:.0f} s "
            f"(cache_teacher=False / --no-cache-teacher runs the teacher every epoch)")
    buckets = bucket_boundaries(config.seq_len)
    # Not cached: a cache after the shuffle would replay epoch 1's order every epoch.
    train = to_model_inputs(raw_train, model, config.batch_size,
                            sequence_length=config.seq_len, bucket_boundaries=buckets,
                            shuffle_buffer=SHUFFLE_BUFFER, seed=config.seed)
    dev = to_model_inputs(raw_dev, model, config.batch_size,
                          sequence_length=config.seq_len, bucket_boundaries=buckets)
    return train, dev.cache()


def corpus_dataset(files, model, config):
    """Packed plain-text batches for general distillation (no labels)."""
    tokenizer = getattr(getattr(model, "preprocessor", None), "tokenizer", model)
    train = _corpus.text_corpus(files, tokenizer, config.seq_len, config.batch_size,
                                seed=config.seed)
    if config.max_examples:
        train = train.take(max(1, config.max_examples // config.batch_size))
    return train
