"""`keras-tinybert distill`: one stage of TinyBERT distillation as a new run.

    keras-tinybert distill --teacher runs/teacher-.../ --stage intermediate \\
        --task sst2 --data-dir ../shared/data/sst2 --student-shape 2L-128H-512I \\
        --epochs 3 --strategy auto --mixed-precision none --backup-dir /tmp/bk

General distillation reads plain text instead of a task: `--stage general --corpus
FILES`. The student comes from `--student` (an earlier run: the recipe's stages chain)
or is built from the teacher with `--student-shape`. `--config RECIPE.yaml` runs a
recipe's stages in order (`kt.train.load_recipe`); the flags given with it are the
defaults its options override. The work is `kt.train.distill_stage` / `run_recipe`.
"""

from keras_tinybert.commands.options import add_config_arguments, config_from_args

FLAGS = ("teacher", "student", "new_projections", "student_shape", "stage", "task",
         "data_dir", "train_file", "skip_malformed", "corpus", "max_examples",
         "seq_len", "batch_size", "epochs", "lr", "schedule", "warmup", "layer_map",
         "cache_teacher", "temperature", "strategy", "tpu", "mixed_precision",
         "teacher_precision", "backup_dir", "save_freq", "output", "seed")


def add_arguments(parser):
    parser.add_argument("--config", help="a recipe YAML: stages run in order, each "
                        "starting from the previous stage's student")
    add_config_arguments(parser, FLAGS)


def run(args):
    from keras_tinybert import train

    config = config_from_args(args)
    if args.config:
        train.run_recipe(train.load_recipe(args.config, base=config))
    else:
        train.distill_stage(config)
    return 0
