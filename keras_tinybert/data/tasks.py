"""The GLUE task table: where each task's text and label live, and how it is scored.

One `TaskSpec` per task says, for both sources of GLUE data,

- TFDS (`glue/<task>`): the feature names of the text fields;
- a local GLUE folder in GLUE's own layout (`SST-2/train.tsv`, ...): the folder name, the
  file of each split, and the columns of the text fields and the label (by header name,
  or by position for CoLA, whose train/dev files have no header row);

and, for both, the label names *in the order of the label ids* (TFDS's order, e.g. MNLI:
entailment, neutral, contradiction). The label order is the one the data is given in;
`labels.py` parses labels and compares the order with a model's, `metrics.py` says how
each task is scored.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What `load_glue`, `evaluate` and the augmenter need to know about one task.

    Attributes:
        name: the TFDS config name (`"sst2"`, `"mnli"`, ...).
        glue_dir: the folder name in the GLUE download (`"SST-2"`).
        tfds_text: TFDS feature names of the text fields, in model input order.
        tsv_text: GLUE TSV columns of the same fields (header names, or int positions).
        tsv_label: the GLUE TSV label column (header name or int position).
        label_names: class names in label-id order; `None` for regression (STS-B).
        tsv_files: split name -> TSV file name in the GLUE folder.
        tsv_header: whether the TSV files of the labelled splits have a header row.
        augment_n: N_a, samples per example in the paper's code (§3.1, per task).
    """

    name: str
    glue_dir: str
    tfds_text: tuple
    tsv_text: tuple
    tsv_label: object
    label_names: tuple
    tsv_files: dict = dataclasses.field(
        default_factory=lambda: {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
    )
    tsv_header: bool = True
    augment_n: int = 20

    @property
    def is_pair(self):
        return len(self.tfds_text) == 2

    @property
    def is_regression(self):
        return self.label_names is None

    @property
    def num_classes(self):
        return 1 if self.is_regression else len(self.label_names)

    @property
    def metrics(self):
        """The task's GLUE metric names, the headline first (`metrics.metric_names`)."""
        from keras_tinybert.data.metrics import metric_names  # metrics.py imports tasks

        return metric_names(self)


_MNLI_FILES = {
    "train": "train.tsv",
    "dev_matched": "dev_matched.tsv",
    "dev_mismatched": "dev_mismatched.tsv",
    "test_matched": "test_matched.tsv",
    "test_mismatched": "test_mismatched.tsv",
}

GLUE_TASKS = {
    spec.name: spec
    for spec in [
        TaskSpec(
            "cola", "CoLA", ("sentence",), (3,), 1,
            ("unacceptable", "acceptable"), tsv_header=False, augment_n=30,
        ),
        TaskSpec(
            "sst2", "SST-2", ("sentence",), ("sentence",), "label",
            ("negative", "positive"), augment_n=20,
        ),
        TaskSpec(
            "mrpc", "MRPC", ("sentence1", "sentence2"), ("#1 String", "#2 String"),
            "Quality", ("not_equivalent", "equivalent"), augment_n=30,
        ),
        TaskSpec(
            "stsb", "STS-B", ("sentence1", "sentence2"), ("sentence1", "sentence2"),
            "score", None, augment_n=30,
        ),
        TaskSpec(
            "qqp", "QQP", ("question1", "question2"), ("question1", "question2"),
            "is_duplicate", ("not_duplicate", "duplicate"), augment_n=10,
        ),
        TaskSpec(
            "mnli", "MNLI", ("premise", "hypothesis"), ("sentence1", "sentence2"),
            "gold_label", ("entailment", "neutral", "contradiction"),
            tsv_files=_MNLI_FILES, augment_n=10,
        ),
        TaskSpec(
            "qnli", "QNLI", ("question", "sentence"), ("question", "sentence"),
            "label", ("entailment", "not_entailment"), augment_n=20,
        ),
        TaskSpec(
            "rte", "RTE", ("sentence1", "sentence2"), ("sentence1", "sentence2"),
            "label", ("entailment", "not_entailment"), augment_n=30,
        ),
        TaskSpec(
            "wnli", "WNLI", ("sentence1", "sentence2"), ("sentence1", "sentence2"),
            "label", ("not_entailment", "entailment"), augment_n=20,
        ),
    ]
}

# Other spellings users type: GLUE folder names ("SST-2", "STS-B") and "sst-2".
_ALIASES = {spec.glue_dir.lower(): name for name, spec in GLUE_TASKS.items()}
_ALIASES.update({"sts-b": "stsb", "sst-2": "sst2"})

# Split names: GLUE files say "dev", TFDS says "validation".
_TFDS_SPLITS = {"dev": "validation", "dev_matched": "validation_matched",
                "dev_mismatched": "validation_mismatched"}


def get_task(task):
    """The `TaskSpec` of `task` (a spec, a TFDS name, or a GLUE folder name)."""
    if isinstance(task, TaskSpec):
        return task
    key = str(task).lower()
    key = _ALIASES.get(key, key)
    if key not in GLUE_TASKS:
        raise ValueError(
            f"Unknown GLUE task {task!r}. Known tasks: {', '.join(GLUE_TASKS)}."
        )
    return GLUE_TASKS[key]


def tsv_split(spec, split):
    """The GLUE file split name for `split` ("validation" -> "dev"; MNLI "dev" -> matched)."""
    inverse = {v: k for k, v in _TFDS_SPLITS.items()}
    split = inverse.get(split, split)
    if spec.name == "mnli" and split in ("dev", "test"):
        split = f"{split}_matched"
    if split not in spec.tsv_files:
        raise ValueError(
            f"Task {spec.name!r} has no split {split!r}; "
            f"choose one of {', '.join(spec.tsv_files)}."
        )
    return split


def tfds_split(spec, split):
    """The TFDS split name for `split` ("dev" -> "validation")."""
    return _TFDS_SPLITS.get(tsv_split(spec, split), tsv_split(spec, split))
