"""One run's options in one place: `kt.Config`, what a CLI command or a recipe stage holds.

Every `keras-tinybert finetune-teacher` / `distill` flag is a field here (flag
`--seq-len` is field `seq_len`), and a recipe YAML is a list of these (top-level keys
shared, `stages:` per stage). The defaults below are the only defaults: argparse
reads them from here.

    config = kt.Config(stage="intermediate", teacher="runs/teacher-sst2-...",
                       task="sst2", data_dir="../shared/data/sst2", epochs=3)
    run_dir = kt.train.distill_stage(config)

Construction validates: an unknown stage, schedule, strategy or precision is an
error that names the known ones, and so is an unknown key in `Config.from_dict`.
"""

import dataclasses
import re

# Task distillation and general distillation (§3.2), plus fine-tuning a teacher.
DISTILL_STAGES = ("general", "intermediate", "prediction", "joint")
STAGES = ("finetune",) + DISTILL_STAGES
SCHEDULES = ("constant", "cosine")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
MIXED_PRECISIONS = ("none", "bf16", "fp16")
TEACHER_PRECISIONS = ("float32", "bfloat16")
# The paper's TinyBERT4: 4 layers, 312 wide, 1200 in the feed-forward.
DEFAULT_STUDENT_SHAPE = "4L-312H-1200I"


@dataclasses.dataclass
class Config:
    """The options of one run (a fine-tuning or one distillation stage).

    What to train:
        stage: ``"finetune"`` (a teacher, or with `student_shape` a labels-only
            baseline) or a distillation stage: ``"general"``, ``"intermediate"``,
            ``"prediction"``, ``"joint"``.
        teacher: the teacher (distillation) or the pre-trained model to fine-tune:
            a run directory, a `.keras` file, a Hugging Face folder or a keras-hub
            preset name.
        student: start from this run's student (distillation).
        student_shape: ``NL-HH-II[-AA]`` of a new student (distillation: default
            TinyBERT4, 4L-312H-1200I; fine-tuning: a labels-only baseline).
        new_projections: with `student`, start W_e/W_h afresh instead of loading
            the earlier run's.
    Data:
        task: GLUE task (task stages and fine-tuning), e.g. ``"sst2"``.
        data_dir: a local GLUE folder; None: TFDS `glue/<task>`.
        train_file: a GLUE-layout TSV to train on instead of the train split
            (e.g. augmented data).
        corpus: text files, globs or folders (general stage).
        skip_malformed: skip TSV rows that do not parse instead of stopping.
        max_examples: use the first N examples (N / batch_size batches of text).
        seq_len: tokens per example (longer inputs are truncated).
        batch_size: the global batch size.
    Optimisation:
        epochs, lr: epochs and peak learning rate.
        schedule: ``"constant"`` or ``"cosine"`` (linear warm-up over `warmup` of
            the steps, then cosine decay to 0). None: cosine for fine-tuning,
            constant for distillation.
        warmup: fraction of the steps to warm up over.
        seed: random seed (initialisation, dropout, shuffling).
    Distillation:
        layer_map: ``"uniform"``, ``"top"``, ``"bottom"`` or a list of teacher
            blocks (1-based), e.g. ``[2, 4, 6]``.
        temperature: t of the prediction loss.
        cache_teacher: prediction stage: compute the teacher's logits once.
        teacher_precision: ``"float32"`` or ``"bfloat16"`` (teacher forward).
    Scale and resumption:
        strategy, tpu: `kt.distribute.strategy` arguments.
        mixed_precision: ``"none"``, ``"bf16"`` or ``"fp16"``.
        backup_dir, save_freq: resume from / back up to this folder every N steps.
    Output:
        output: runs are created in this folder (never overwritten).
    """

    stage: str = "intermediate"
    teacher: str | None = None
    student: str | None = None
    student_shape: str | None = None
    new_projections: bool = False

    task: str | None = None
    data_dir: str | None = None
    train_file: str | None = None
    corpus: list | None = None
    skip_malformed: bool = False
    max_examples: int | None = None
    seq_len: int = 128
    batch_size: int = 32

    epochs: int = 3
    lr: float = 5e-5
    schedule: str | None = None
    warmup: float = 0.1
    seed: int = 0

    layer_map: object = "uniform"
    temperature: float = 1.0
    cache_teacher: bool = True
    teacher_precision: str = "float32"

    strategy: str = "auto"
    tpu: str | None = None
    mixed_precision: str = "none"
    backup_dir: str | None = None
    save_freq: int = 200

    output: str = "runs"

    def __post_init__(self):
        _choose("stage", self.stage, STAGES)
        if self.schedule is not None:
            _choose("schedule", self.schedule, SCHEDULES)
        _choose("strategy", self.strategy, STRATEGIES)
        _choose("mixed_precision", self.mixed_precision, MIXED_PRECISIONS)
        _choose("teacher_precision", self.teacher_precision, TEACHER_PRECISIONS)
        if isinstance(self.corpus, str):
            self.corpus = [self.corpus]
        if isinstance(self.layer_map, str) and re.fullmatch(r"\d+(,\d+)*", self.layer_map):
            self.layer_map = [int(n) for n in self.layer_map.split(",")]
        for name in ("seq_len", "batch_size", "epochs", "save_freq"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup is a fraction of the steps in [0, 1), got {self.warmup}.")
        if self.student_shape is not None:
            parse_shape(self.student_shape)

    @property
    def is_finetune(self):
        return self.stage == "finetune"

    @property
    def learning_rate_schedule(self):
        """The schedule in effect: `schedule`, or the stage's default."""
        if self.schedule is not None:
            return self.schedule
        return "cosine" if self.is_finetune else "constant"

    @classmethod
    def fields(cls):
        """The option names, in declaration order."""
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, options, where="config"):
        """A Config from a dict (a recipe stage); unknown keys are an error.

        Every error message starts with `where` (e.g. the recipe file and stage).
        """
        unknown = sorted(set(options) - set(cls.fields()))
        if unknown:
            raise ValueError(
                f"{where}: unknown option(s) {unknown}; the options are "
                f"{cls.fields()}."
            )
        try:
            return cls(**options)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None

    def replace(self, **changes):
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)


def _choose(name, value, known):
    if value not in known:
        raise ValueError(f"Unknown {name} {value!r}: use one of {list(known)}.")


def parse_shape(text):
    """'4L-312H-1200I' or '4L-312H-1200I-12A' → dict of `student_like` arguments."""
    match = re.fullmatch(r"(\d+)L-(\d+)H-(\d+)I(?:-(\d+)A)?", str(text).strip())
    if not match:
        raise ValueError(
            f"student_shape {text!r} is not of the form NL-HH-II[-AA], "
            f"e.g. 4L-312H-1200I or 4L-312H-1200I-12A."
        )
    layers, hidden, inter, heads = match.groups()
    return {"num_layers": int(layers), "hidden_dim": int(hidden),
            "intermediate_dim": int(inter),
            "num_heads": int(heads) if heads else None}
