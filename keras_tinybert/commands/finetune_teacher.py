"""`keras-tinybert finetune-teacher`: fine-tune a pre-trained BERT on a GLUE task.

With `--student-shape`, the same command trains a student-shaped model from scratch on
the labels alone: the baseline that shows what distillation adds.

    keras-tinybert finetune-teacher --model bert_base_en_uncased --task sst2 \\
        --data-dir ../shared/data/sst2 --epochs 3 --output runs

`--model` is a keras-hub preset (needs a network), a Hugging Face BERT folder, or a
saved `.keras` model. The result is a new run directory (`keras_tinybert.runs`) whose
`metadata.json` carries the task and its label names (so every later stage checks
them). The work is `kt.train.finetune` with stage "finetune".
"""

from keras_tinybert.commands.options import add_config_arguments, config_from_args

FLAGS = ("teacher", "task", "data_dir", "train_file", "skip_malformed", "max_examples",
         "seq_len", "batch_size", "epochs", "lr", "student_shape", "output", "seed")


def add_arguments(parser):
    add_config_arguments(parser, FLAGS, teacher={
        "flag": "--model", "required": True,
        "help": "keras-hub preset, Hugging Face folder or .keras model"},
        task={"required": True, "help": "GLUE task, e.g. sst2"},
        max_examples={"help": "train on the first N"},
        student_shape={"help": "train a fresh, randomly initialised model of this "
                       "shape (NL-HH-II[-AA]) of --model's family and vocabulary "
                       "instead: the labels-only baseline of a distilled student"})


def run(args):
    from keras_tinybert import train

    train.finetune(config_from_args(args, stage="finetune"))
    return 0
