"""Students for a given teacher: the paper's TinyBERT shapes, or any shape you pick.

A student must read the same token ids as its teacher (same vocabulary and
preprocessor) and be at most as deep. `student_like` builds one of the teacher's
own keras-hub family — same backbone class, same task class, same number of
classes, the teacher's preprocessor — with the depth and width you ask for. The
family's other settings follow from the teacher's config, by the rules of
`_family_rules` (read from the config's keys, so any family with the same keys
is served alike).
"""

import math

from keras_tinybert.layer_map import layer_map as make_layer_map
from keras_tinybert.taps import Taps, backbone_of, block_calls, vocabulary_size

# The paper's students (Jiao et al. 2020, §4.1).
TINYBERT4 = {"num_layers": 4, "hidden_dim": 312, "intermediate_dim": 1200, "num_heads": 12}
TINYBERT6 = {"num_layers": 6, "hidden_dim": 768, "intermediate_dim": 3072, "num_heads": 12}
PRESETS = {"tinybert4": TINYBERT4, "tinybert6": TINYBERT6}

_DROP_KEYS = ("name", "trainable", "dtype")


def _config(model):
    return {k: v for k, v in model.get_config().items() if k not in _DROP_KEYS}


def _family_rules(teacher, config, num_layers, hidden_dim, num_heads):
    """The settings that follow from the student's shape, family by family.

    - vocabulary (``vocabulary_size``, ELECTRA's ``vocab_size``): the rows of the
      teacher's token embedding, so that both read the same ids;
    - ALBERT ``num_groups``: the largest divisor of the student's depth that
      divides the teacher's group count, one repetition per layer, so the
      student makes exactly ``num_layers`` block calls;
    - ``embedding_dim`` (ALBERT, ELECTRA): factorised embeddings keep the
      teacher's size (at most the student's width); unfactorised ones (E = d)
      follow the student's width;
    - RoFormerV2 ``head_size``: hidden_dim / num_heads, as in the other families.
    """
    rules = {}
    for key in ("vocabulary_size", "vocab_size"):
        if key in config:
            rules[key] = vocabulary_size(teacher)
    if "num_groups" in config:
        rules["num_groups"] = math.gcd(config["num_groups"], num_layers)
        rules["num_inner_repetitions"] = 1
    if "embedding_dim" in config:
        factorised = config["embedding_dim"] != config["hidden_dim"]
        rules["embedding_dim"] = (min(config["embedding_dim"], hidden_dim)
                                  if factorised else hidden_dim)
    if "head_size" in config:
        rules["head_size"] = hidden_dim // num_heads
    return rules


def _student_backbone(teacher, backbone, num_layers, hidden_dim, intermediate_dim,
                      num_heads, dropout):
    config = _config(backbone)
    has_heads = "num_heads" in config
    if not has_heads and num_heads is not None:
        raise ValueError(
            f"{type(backbone).__name__} has no attention heads (its blocks mix "
            f"tokens without attention): build its student without num_heads."
        )
    if has_heads:
        num_heads = num_heads or config["num_heads"]
        if hidden_dim % num_heads:
            raise ValueError(
                f"hidden_dim={hidden_dim} is not divisible by num_heads={num_heads}; "
                f"each head gets hidden_dim / num_heads dimensions."
            )
        config["num_heads"] = num_heads
    config.update(num_layers=num_layers, hidden_dim=hidden_dim,
                  intermediate_dim=intermediate_dim)
    config.update(_family_rules(teacher, config, num_layers, hidden_dim, num_heads))
    if dropout is not None:
        config["dropout"] = dropout
    return type(backbone)(**config, dtype=backbone.dtype_policy)


def _task_config(teacher, student_backbone):
    """The teacher's task config on `student_backbone`: same classes, same
    preprocessor; a task layer as wide as the teacher's backbone (the default)
    becomes as wide as the student's."""
    config = _config(teacher)
    if config.get("hidden_dim") == backbone_of(teacher).hidden_dim:
        config["hidden_dim"] = None
    config["backbone"] = student_backbone
    config["preprocessor"] = teacher.preprocessor
    return config


def student_like(teacher, num_layers, hidden_dim, intermediate_dim, num_heads=None,
                 dropout=None, init_from_teacher=False, layer_map="uniform"):
    """A keras-hub model of the teacher's family, smaller.

    Works for every keras-hub text-encoder family (BERT, RoBERTa, XLM-R,
    DistilBERT, ALBERT, DeBERTaV3, ELECTRA, F-Net, RoFormerV2); the family's other
    settings follow the teacher's by the rules in `_family_rules`.

    Args:
        teacher: a keras-hub backbone or task model (e.g. `BertTextClassifier`).
        num_layers: the student's number of block calls M.
        hidden_dim, intermediate_dim: the student's width.
        num_heads: defaults to the teacher's head count (the attention loss compares
            head i with head i); families without attention (F-Net) take none.
        dropout: defaults to the teacher's.
        init_from_teacher: copy the teacher's embeddings and other layers where
            the shapes allow and, for each student block, the weights of the
            teacher block of call g(m) (the blocks need the teacher's width);
            random initialisation otherwise (the paper's students).
        layer_map: the g used by ``init_from_teacher``.

    Returns:
        A model of ``type(teacher)``: for a task model, with the teacher's number of
        classes and the teacher's preprocessor (hence its vocabulary).
    """
    backbone = backbone_of(teacher)
    student_backbone = _student_backbone(
        teacher, backbone, num_layers, hidden_dim, intermediate_dim, num_heads, dropout
    )
    if init_from_teacher:
        copy_teacher_layers(backbone, student_backbone, layer_map)
    if getattr(teacher, "backbone", None) is None:
        return student_backbone
    config = _task_config(teacher, student_backbone)
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
    return type(teacher)(**_task_config(teacher, student))


def _paper_shape(teacher, shape, kwargs):
    shape = {**shape, **kwargs}
    if Taps(teacher, logits=False).num_heads is None and "num_heads" not in kwargs:
        shape.pop("num_heads")  # F-Net: the paper's shape without heads
    return student_like(teacher, **shape)


def tinybert4_like(teacher, **kwargs):
    """The paper's TinyBERT4 (4L-312H-1200I-12A) for this teacher."""
    return _paper_shape(teacher, TINYBERT4, kwargs)


def tinybert6_like(teacher, **kwargs):
    """The paper's TinyBERT6 (6L-768H-3072I-12A) for this teacher."""
    return _paper_shape(teacher, TINYBERT6, kwargs)


def _shapes(layer):
    return [tuple(w.shape) for w in layer.weights]


def copy_teacher_layers(teacher_backbone, student_backbone, layer_map="uniform"):
    """Initialise a student from the teacher: block calls g(m), and the other
    layers where the shapes allow.

    Student block call m gets the weights of the teacher's block call g(m); a
    block the student calls several times (ALBERT's shared layer) takes those of
    its first call's g(m). Every other layer with weights (embeddings, norms,
    pooler, ...) is copied from the teacher's layer of the same name when their
    weight shapes agree.
    """
    student_blocks = [n.operation for n, _ in block_calls(student_backbone)]
    teacher_blocks = [n.operation for n, _ in block_calls(teacher_backbone)]
    mapping = make_layer_map(layer_map, len(student_blocks), len(teacher_blocks))
    copied = set()
    for m, n in mapping.pairs():
        student, teacher = student_blocks[m - 1], teacher_blocks[n - 1]
        if id(student) in copied:
            continue
        if _shapes(student) != _shapes(teacher):
            raise ValueError(
                f"init_from_teacher needs the teacher's width: the teacher is "
                f"{_width(teacher_backbone)}, "
                f"the student {_width(student_backbone)}, so its blocks cannot take "
                f"the teacher's weights."
            )
        student.set_weights(teacher.get_weights())
        copied.add(id(student))
    blocks = {id(b) for b in student_blocks}
    teacher_layers = {layer.name: layer for layer in teacher_backbone.layers}
    for layer in student_backbone.layers:
        source = teacher_layers.get(layer.name)
        if id(layer) in blocks or not layer.weights or source is None:
            continue
        if _shapes(layer) == _shapes(source):
            layer.set_weights(source.get_weights())
    return student_backbone


def _width(backbone):
    return f"{backbone.hidden_dim}H-{getattr(backbone, 'intermediate_dim', '?')}I"


def encoder_parameters(model):
    """Parameters of the Transformer blocks (the paper's "encoder" count); a
    block called several times (ALBERT) counts once."""
    blocks = {id(b): b for b in Taps(model, logits=False).blocks}.values()
    return sum(math.prod(w.shape) for block in blocks for w in block.weights)
