"""Students for a given teacher: the paper's TinyBERT shapes, or any shape you pick.

A student must read the same token ids as its teacher (same vocabulary and
preprocessor) and be at most as deep. `student_like` builds one of the teacher's
own keras-hub family — same backbone class, same task class, same number of
classes, the teacher's preprocessor — with the depth and width you ask for.
"""

import math

from keras_tinybert.layer_map import layer_map as make_layer_map
from keras_tinybert.taps import backbone_of

# The paper's students (Jiao et al. 2020, §4.1).
TINYBERT4 = {"num_layers": 4, "hidden_dim": 312, "intermediate_dim": 1200, "num_heads": 12}
TINYBERT6 = {"num_layers": 6, "hidden_dim": 768, "intermediate_dim": 3072, "num_heads": 12}
PRESETS = {"tinybert4": TINYBERT4, "tinybert6": TINYBERT6}

_DROP_KEYS = ("name", "trainable", "dtype")


def _student_backbone(backbone, num_layers, hidden_dim, intermediate_dim, num_heads,
                      dropout):
    config = {k: v for k, v in backbone.get_config().items() if k not in _DROP_KEYS}
    config.update(
        num_layers=num_layers,
        hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim,
        num_heads=num_heads,
    )
    if dropout is not None:
        config["dropout"] = dropout
    if hidden_dim % num_heads:
        raise ValueError(
            f"hidden_dim={hidden_dim} is not divisible by num_heads={num_heads}; "
            f"each head gets hidden_dim / num_heads dimensions."
        )
    return type(backbone)(**config, dtype=backbone.dtype_policy)


def student_like(teacher, num_layers, hidden_dim, intermediate_dim, num_heads=None,
                 dropout=None, init_from_teacher=False, layer_map="uniform"):
    """A keras-hub model of the teacher's family, smaller.

    Args:
        teacher: a keras-hub backbone or task model (e.g. `BertTextClassifier`).
        num_layers, hidden_dim, intermediate_dim: the student's shape.
        num_heads: defaults to the teacher's head count (the attention loss compares
            head i with head i).
        dropout: defaults to the teacher's.
        init_from_teacher: copy the teacher's embeddings and, for each student
            block m, the weights of teacher block g(m) (needs the teacher's width);
            random initialisation otherwise (the paper's students).
        layer_map: the g used by ``init_from_teacher``.

    Returns:
        A model of ``type(teacher)``: for a task model, with the teacher's number of
        classes and the teacher's preprocessor (hence its vocabulary).
    """
    backbone = backbone_of(teacher)
    num_heads = num_heads or backbone.num_heads
    student_backbone = _student_backbone(
        backbone, num_layers, hidden_dim, intermediate_dim, num_heads, dropout
    )
    if init_from_teacher:
        copy_teacher_layers(backbone, student_backbone, layer_map)
    if getattr(teacher, "backbone", None) is None:
        return student_backbone
    config = {k: v for k, v in teacher.get_config().items() if k not in _DROP_KEYS}
    config["backbone"] = student_backbone
    config["preprocessor"] = teacher.preprocessor
    if dropout is not None and "dropout" in config:
        config["dropout"] = dropout
    return type(teacher)(**config)


def task_like(student, teacher):
    """`student` with the teacher's task head, if the student is a bare backbone.

    General distillation trains a backbone; the task stages need a classifier. The
    student's encoder is kept and a fresh head of the teacher's task class is put on
    it (with the teacher's preprocessor), as the paper does after general distillation.
    """
    if getattr(student, "backbone", None) is not None or getattr(
        teacher, "backbone", None
    ) is None:
        return student
    config = {k: v for k, v in teacher.get_config().items() if k not in _DROP_KEYS}
    config["backbone"] = student
    config["preprocessor"] = teacher.preprocessor
    return type(teacher)(**config)


def tinybert4_like(teacher, **kwargs):
    """The paper's TinyBERT4 (4L-312H-1200I-12A) for this teacher."""
    return student_like(teacher, **{**TINYBERT4, **kwargs})


def tinybert6_like(teacher, **kwargs):
    """The paper's TinyBERT6 (6L-768H-3072I-12A) for this teacher."""
    return student_like(teacher, **{**TINYBERT6, **kwargs})


def copy_teacher_layers(teacher_backbone, student_backbone, layer_map="uniform"):
    """Initialise a same-width student from the teacher: embeddings and blocks g(m).

    Every non-block layer (embeddings, layer norm, pooler) is copied by name; student
    block m gets the weights of teacher block g(m).
    """
    if teacher_backbone.hidden_dim != student_backbone.hidden_dim or (
        teacher_backbone.intermediate_dim != student_backbone.intermediate_dim
    ):
        raise ValueError(
            f"init_from_teacher needs the teacher's width: the teacher is "
            f"{teacher_backbone.hidden_dim}H-{teacher_backbone.intermediate_dim}I, "
            f"the student {student_backbone.hidden_dim}H-"
            f"{student_backbone.intermediate_dim}I."
        )
    blocks = {id(b) for b in student_backbone.transformer_layers}
    for layer in student_backbone.layers:
        if id(layer) in blocks or not layer.weights:
            continue
        layer.set_weights(teacher_backbone.get_layer(layer.name).get_weights())
    mapping = make_layer_map(
        layer_map, student_backbone.num_layers, teacher_backbone.num_layers
    )
    for m, n in mapping.pairs():
        student_backbone.transformer_layers[m - 1].set_weights(
            teacher_backbone.transformer_layers[n - 1].get_weights()
        )
    return student_backbone


def encoder_parameters(model):
    """Parameters of the Transformer blocks (the paper's "encoder" count)."""
    return sum(
        math.prod(w.shape)
        for block in backbone_of(model).transformer_layers
        for w in block.weights
    )
