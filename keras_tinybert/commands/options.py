"""Command-line flags made from `kt.Config`: one flag per field, its default the field's.

Field `seq_len` is flag `--seq-len`; a boolean field that defaults to False is a
switch (`--skip-malformed`), one that defaults to True a `--no-…` switch
(`--no-cache-teacher`); the defaults shown in `--help` are read from `Config`, so
they exist in one place. Not a command itself: `distill` and `finetune-teacher` use it.
"""

import dataclasses

from keras_tinybert import config as _config

HELP = {
    "stage": "the distillation stage",
    "teacher": "a run/.keras model, a Hugging Face folder or a preset",
    "student": "start from this saved student (a run dir)",
    "student_shape": "NL-HH-II[-AA] of a new student (default TinyBERT4, "
                     f"{_config.DEFAULT_STUDENT_SHAPE})",
    "new_projections": "with --student: start W_e/W_h afresh instead of from the "
                       "student's run",
    "task": "GLUE task (task stages), e.g. sst2",
    "data_dir": "local GLUE folder; default: TFDS",
    "train_file": "a GLUE-layout TSV to train on instead of the task's train split "
                  "(e.g. augmented data)",
    "corpus": "text files (general stage)",
    "skip_malformed": "skip rows of --train-file that do not parse instead of stopping",
    "max_examples": "use the first N examples",
    "seq_len": "tokens per example",
    "batch_size": "the global batch size",
    "epochs": "epochs",
    "lr": "peak learning rate",
    "schedule": "cosine: linear warm-up over --warmup of the steps to --lr, then "
                "cosine decay to 0 (Keras' CosineDecay); default constant",
    "warmup": "fraction of the steps to warm up over (--schedule cosine)",
    "seed": "random seed (initialisation, dropout, shuffling)",
    "layer_map": "uniform, top, bottom or teacher blocks (1-based), e.g. 2,4,6",
    "temperature": "temperature of the prediction loss",
    "cache_teacher": "prediction stage: run the teacher every epoch instead of "
                     "computing its logits once",
    "teacher_precision": "bfloat16: the frozen teacher's forward in mixed_bfloat16 "
                         "(faster on AVX512-BF16/AMX CPUs and TPUs; losses within 1%%)",
    "strategy": "distribution strategy (auto: TPU, workers or GPUs when present)",
    "tpu": "TPU name/address (with --strategy tpu)",
    "mixed_precision": "mixed-precision policy of the student",
    "backup_dir": "resume from / back up to this folder",
    "save_freq": "steps between backups",
    "output": "runs are created in here",
}

CHOICES = {
    "stage": _config.DISTILL_STAGES,
    "schedule": _config.SCHEDULES,
    "strategy": _config.STRATEGIES,
    "mixed_precision": _config.MIXED_PRECISIONS,
    "teacher_precision": _config.TEACHER_PRECISIONS,
}


def add_config_arguments(parser, names, **changes):
    """Add the flags of the `Config` fields `names`; `changes[name]` overrides what
    `add_argument` gets for one of them (`flag=` renames it, e.g. `--model`)."""
    fields = {field.name: field for field in dataclasses.fields(_config.Config)}
    for name in names:
        field, kwargs = fields[name], {"dest": name, "default": fields[name].default}
        flag = "--" + name.replace("_", "-")
        if field.type is bool:
            kwargs["action"] = "store_false" if field.default else "store_true"
            flag = "--no-" + flag[2:] if field.default else flag
        elif name == "corpus":
            kwargs["nargs"] = "+"
        else:
            kwargs["type"] = _scalar_type(field)
        if name in CHOICES:
            kwargs["choices"] = CHOICES[name]
        shown = field.default is not None and not isinstance(field.default, bool)
        kwargs["help"] = HELP[name] + (f" (default {field.default})" if shown else "")
        kwargs.update(changes.get(name, {}))
        if "flag" in kwargs:  # renamed: name the value after the flag too
            flag = kwargs.pop("flag")
            kwargs.setdefault("metavar", flag.lstrip("-").upper().replace("-", "_"))
        parser.add_argument(flag, **kwargs)


def _scalar_type(field):
    """int, float or str: the field's type, or its default's for `X | None`."""
    for kind in (int, float):
        if field.type is kind or field.type == (kind | None):
            return kind
    return str


def config_from_args(args, **changes):
    """The `Config` of parsed flags (the fields among `args`), with `changes`."""
    options = {name: value for name, value in vars(args).items()
               if name in _config.Config.fields()}
    return _config.Config(**{**options, **changes})
