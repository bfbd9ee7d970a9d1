"""The loss objects against the NumPy references of test_losses.py, their checks of
a teacher/student pair, and the Distiller looping over them: a user's extra loss,
`head=`, the logits path only where used, and a family without attention."""

import logging
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import keras_tinybert as kt
from keras_tinybert import distiller as distiller_module
from keras_tinybert import testing
from keras_tinybert.distillation_loss import (
    AttentionLoss,
    DistillationLoss,
    EmbeddingLoss,
    HiddenLoss,
    PredictionLoss,
    tinybert_losses,
)
from keras_tinybert.taps import Taps
from test_losses import np_softmax, paper_attention_reference

rng = np.random.default_rng(1)
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], "int32")
PAIRS = [(1, 2), (2, 4)]  # student block m ↔ teacher block n (1-based)


def normal(*shape, scale=1.0):
    return (rng.normal(size=shape) * scale).astype("float32")


def np_mse(student, teacher, mask=None):
    if mask is None:
        return np.mean((student - teacher) ** 2)
    sel = mask.astype(bool)
    return np.mean((student[sel] - teacher[sel]) ** 2)


# ------------------------------------------------- each loss vs NumPy ----------
@pytest.mark.parametrize("masking", ["paper", "exact"])
def test_embedding_loss(masking):
    s, t, W = normal(2, 5, 4), normal(2, 5, 6), normal(4, 6)
    mask = MASK if masking == "exact" else None
    got = EmbeddingLoss(masking).compute_loss(
        {"embedding": t}, {"embedding": s}, padding_mask=MASK, projection=lambda x: x @ W
    )
    np.testing.assert_allclose(float(got), np_mse(s @ W, t, mask), rtol=1e-5)


@pytest.mark.parametrize("masking", ["paper", "exact"])
def test_hidden_loss_sums_the_mapped_blocks(masking):
    student = [normal(2, 5, 4) for _ in range(2)]
    teacher = [normal(2, 5, 6) for _ in range(4)]
    W = normal(4, 6)
    mask = MASK if masking == "exact" else None
    expected = sum(np_mse(student[m - 1] @ W, teacher[n - 1], mask) for m, n in PAIRS)
    got = HiddenLoss(masking).compute_loss(
        {"hidden": teacher}, {"hidden": student}, padding_mask=MASK,
        layer_pairs=PAIRS, projection=lambda x: x @ W,
    )
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_attention_loss_paper_masking_sums_the_mapped_blocks():
    student = [normal(2, 3, 5, 5, scale=3.0) for _ in range(2)]
    teacher = [normal(2, 3, 5, 5, scale=3.0) for _ in range(4)]
    student[0][0, 0, 1, 2] = -250.0  # a real score ≤ −100 is zeroed (paper's code)
    expected = sum(
        paper_attention_reference(student[m - 1], teacher[n - 1], MASK.astype("float32"))
        for m, n in PAIRS
    )
    got = AttentionLoss().compute_loss(
        {"attention": teacher}, {"attention": student}, padding_mask=MASK,
        layer_pairs=PAIRS,
    )
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_attention_loss_exact_masking_and_head_mean():
    s, t = normal(2, 2, 5, 5), normal(2, 6, 5, 5)
    s_mean, t_mean = s.mean(1), t.mean(1)
    pair = (MASK[:, :, None] * MASK[:, None, :]).astype(bool)
    expected = np.mean((s_mean[pair] - t_mean[pair]) ** 2)
    got = AttentionLoss("exact", "mean").compute_loss(
        {"attention": [t]}, {"attention": [s]}, padding_mask=MASK, layer_pairs=[(1, 1)]
    )
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


@pytest.mark.parametrize("reduction, divide", [("batch", 1), ("elements", 3)])
def test_prediction_loss_soft_cross_entropy(reduction, divide):
    zs, zt = normal(4, 3), normal(4, 3, scale=2.0)
    p, logq = np_softmax(zt / 2.0), np.log(np_softmax(zs / 2.0))
    expected = np.mean(np.sum(-p * logq, -1)) / divide
    got = PredictionLoss(2.0, reduction).compute_loss({"logits": zt}, {"logits": zs})
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_prediction_loss_regression_is_mse():
    zs, zt = normal(4, 1), normal(4, 1)
    got = PredictionLoss().compute_loss({"logits": zt}, {"logits": zs})
    np.testing.assert_allclose(float(got), np.mean((zs - zt) ** 2), rtol=1e-5)


def test_declarations():
    declared = {name: (loss.taps, loss.projection)
                for name, loss in tinybert_losses().items()}
    assert declared == {
        "embedding": (("embedding",), "embedding"),
        "hidden": (("hidden",), "hidden"),
        "attention": (("attention",), None),
        "prediction": (("logits",), None),
    }
    assert all(loss.name == name for name, loss in tinybert_losses().items())


@pytest.mark.parametrize(
    "loss", [EmbeddingLoss("exact"), HiddenLoss(), AttentionLoss("exact", "mean"),
             PredictionLoss(2.0, "elements")],
)
def test_config_round_trip(loss):
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)
    )
    assert type(clone) is type(loss) and clone.get_config() == loss.get_config()


# ------------------------------------------------------------ validation ------
def fake_taps(heads=4, logits=True, attention=True, model=None):
    """What the losses read of a `kt.Taps`: no model needed."""
    return types.SimpleNamespace(num_heads=heads, has_logits=logits,
                                 has_attention=attention, model=model)


def test_head_count_mismatch():
    with pytest.raises(ValueError, match="4 attention heads and the student 2.*"
                                         "attention_heads='mean'"):
        AttentionLoss().validate_model_compatibility(fake_taps(4), fake_taps(2))
    AttentionLoss(heads="mean").validate_model_compatibility(fake_taps(4), fake_taps(2))


def test_logits_needed():
    loss = PredictionLoss()
    with pytest.raises(ValueError, match="teacher is a bare backbone.*head="):
        loss.validate_model_compatibility(fake_taps(logits=False), fake_taps())
    with pytest.raises(ValueError, match="teacher and student are bare backbones"):
        loss.validate_model_compatibility(fake_taps(logits=False), fake_taps(logits=False))
    loss.validate_model_compatibility(fake_taps(), fake_taps())
    # The other losses do not need logits.
    HiddenLoss().validate_model_compatibility(fake_taps(logits=False), fake_taps())


def test_attention_unavailable():
    fnet = keras.layers.Layer(name="fnet")  # any model object: its class is named
    teacher = fake_taps(heads=None, attention=False, model=fnet)
    loss = AttentionLoss()
    assert "teacher (Layer) has no attention scores" in loss.unsupported(teacher, fake_taps())
    assert HiddenLoss().unsupported(teacher, fake_taps()) is None
    with pytest.raises(ValueError, match="attention scores.*Leave 'attention' out of "
                                         "loss_weights"):
        loss.validate_model_compatibility(teacher, fake_taps())


def test_missing_tap_in_outputs():
    with pytest.raises(ValueError, match="reads 'attention', which the student's taps"):
        AttentionLoss().validate_outputs({"attention": [1]}, {"attention": []})
    with pytest.raises(ValueError, match="reads 'logits', which the teacher's taps"):
        PredictionLoss().validate_outputs({"hidden": []}, {"logits": 1})


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: AttentionLoss(masking="x"), "masking must be one of"),
        (lambda: AttentionLoss(heads="x"), "heads must be one of"),
        (lambda: HiddenLoss("x"), "masking must be one of"),
        (lambda: PredictionLoss(0.0), "temperature must be > 0"),
        (lambda: PredictionLoss(reduction="x"), "reduction must be one of"),
    ],
)
def test_bad_options(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "attributes, message",
    [
        ({"taps": ("hidden",)}, "needs a `name`"),
        ({"name": "x", "taps": ("values",)}, "taps must name"),
        ({"name": "x", "taps": ()}, "taps must name"),
        ({"name": "x", "taps": ("hidden",), "projection": "W"}, "projection must be"),
    ],
)
def test_bad_declarations(attributes, message):
    bad = type("Bad", (DistillationLoss,), attributes)
    with pytest.raises(ValueError, match=message):
        bad()


# ----------------------------------------------------- in the Distiller ------
@keras.saving.register_keras_serializable(package="test_distillation_loss")
class RelationLoss(DistillationLoss):
    """A MiniLM-style relation loss: MSE between the token-token similarity
    distributions softmax(H Hᵀ/√d) of the student's and the teacher's last blocks
    (width-free: no projection)."""

    name = "relation"
    taps = ("hidden",)

    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        def relation(h):
            h = ops.cast(h, "float32")
            scores = ops.matmul(h, ops.transpose(h, (0, 2, 1)))
            return ops.softmax(scores / np.sqrt(h.shape[-1]), axis=-1)

        diff = relation(student_outputs["hidden"][-1]) - relation(teacher_outputs["hidden"][-1])
        return self.scale * ops.mean(ops.square(diff))

    def get_config(self):
        return {"scale": self.scale}


def np_relation_loss(teacher_hidden, student_hidden):
    def relation(h):
        h = np.asarray(h, "float64")
        return np_softmax(h @ h.transpose(0, 2, 1) / np.sqrt(h.shape[-1]))

    return np.mean((relation(student_hidden) - relation(teacher_hidden)) ** 2)


SENTENCES = ["a good film , really", "bad movie , boring plot", "the best story ever",
             "awful script and dull actors", "charming , warm and funny",
             "i hated this stupid film", "brilliant performance", "too long and too slow"]


@pytest.fixture(scope="module")
def teacher():
    return testing.tiny_classifier(num_layers=4, hidden_dim=48, num_heads=4, seed=1)


def student_for(teacher, seed=2, **shape):
    keras.utils.set_random_seed(seed)
    return kt.models.student_like(teacher, **{"num_layers": 2, "hidden_dim": 32,
                                              "intermediate_dim": 64, **shape})


def batches(teacher, labels=False):
    data = (SENTENCES, [1, 0] * 4) if labels else SENTENCES
    return tf.data.Dataset.from_tensor_slices(data).batch(8).map(teacher.preprocessor)


def test_extra_loss_is_computed_logged_weighted_and_saved(teacher):
    distiller = kt.Distiller(teacher, student_for(teacher),
                             extra_losses=[(RelationLoss(), 0.5)])
    distiller.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = distiller.evaluate(batches(teacher), return_dict=True, verbose=0)
    x = next(iter(batches(teacher)))
    expected = np_relation_loss(distiller._teacher_forward(x)[0]["hidden"][-1],
                                distiller.student_taps(x)["hidden"][-1])
    np.testing.assert_allclose(logs["relation_loss"], expected, rtol=1e-4)
    total = (logs["embedding_loss"] + logs["attention_loss"] + logs["hidden_loss"]
             + 0.5 * logs["relation_loss"])
    np.testing.assert_allclose(logs["loss"], total, rtol=1e-5)
    clone = kt.Distiller.from_config(distiller.get_config())
    (loss, weight), = clone.extra_losses
    assert isinstance(loss, RelationLoss) and weight == 0.5


def test_extra_loss_alone_trains_the_student(teacher):
    distiller = kt.Distiller(
        teacher, student_for(teacher), stage="intermediate",
        loss_weights={"embedding": 0, "attention": 0, "hidden": 0},
        extra_losses=[RelationLoss(scale=100.0)],
    )
    assert distiller.hidden_projection is None  # no trained loss names W_h
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = distiller.fit(batches(teacher), epochs=8, verbose=0).history
    assert set(history) == {"loss", "relation_loss", "prediction_loss"}
    assert history["loss"] == history["relation_loss"]
    assert history["relation_loss"][-1] < 0.8 * history["relation_loss"][0]


def test_bad_extra_losses(teacher):
    student = student_for(teacher)
    with pytest.raises(ValueError, match="DistillationLoss objects"):
        kt.Distiller(teacher, student, extra_losses=[lambda t, s: 0.0])
    with pytest.raises(ValueError, match="name 'hidden' is taken"):
        kt.Distiller(teacher, student, extra_losses=[HiddenLoss()])
    with pytest.raises(ValueError, match="name 'relation' is taken"):
        kt.Distiller(teacher, student, extra_losses=[RelationLoss(), RelationLoss()])
    with pytest.raises(ValueError, match="nothing to train"):
        kt.Distiller(teacher, student, stage="prediction", loss_weights={"prediction": 0},
                     extra_losses=[(RelationLoss(), 0.0)])


def test_head_pair_gives_the_logits(teacher):
    """head=(teacher_head, student_head) replaces the models' own heads."""
    student = student_for(teacher)

    def cls_head(model):  # [CLS] straight into the output layer, no pooler
        return lambda sequence, training: model.output_dense(sequence[:, 0, :])

    distiller = kt.Distiller(teacher, student, stage="prediction",
                             head=(cls_head(teacher), cls_head(student)))
    distiller.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = distiller.evaluate(batches(teacher), return_dict=True, verbose=0)
    x = next(iter(batches(teacher)))
    zt, zs = (keras.ops.convert_to_numpy(m.output_dense(m.backbone(x)["sequence_output"][:, 0, :]))
              for m in (teacher, student))
    expected = np.mean(np.sum(-np_softmax(zt) * np.log(np_softmax(zs)), -1))
    np.testing.assert_allclose(logs["prediction_loss"], expected, rtol=1e-5)
    own = kt.Distiller(teacher, student, stage="prediction")
    own.compile(optimizer=keras.optimizers.SGD(0.0))
    assert abs(own.evaluate(batches(teacher), return_dict=True, verbose=0)
               ["prediction_loss"] - expected) > 1e-4  # the pooler was skipped
    with pytest.raises(ValueError, match="head must be a pair"):
        kt.Distiller(teacher, student, head=cls_head(teacher))


def recording_taps(monkeypatch, refuse_head_of=()):
    """Replace the Distiller's `Taps` by one that records each model's `logits`
    argument and cannot read the head of the models in `refuse_head_of`."""
    calls = {}

    def taps(model, head=None, logits=True):
        calls.setdefault(id(model), []).append(logits)
        if logits and any(model is m for m in refuse_head_of):
            raise ValueError(f"Taps cannot read the logits of {type(model).__name__}")
        return Taps(model, head=head, logits=logits)

    monkeypatch.setattr(distiller_module, "Taps", taps)
    return calls


def test_logits_path_only_where_used_or_monitored(teacher, monkeypatch):
    student = student_for(teacher)
    calls = recording_taps(monkeypatch)
    d = kt.Distiller(teacher, student.backbone, stage="intermediate")
    assert calls[id(teacher)] == [False] and not d.teacher_taps.has_logits
    assert "prediction" not in d.compute_losses(*_outputs(d, teacher))
    d = kt.Distiller(teacher, student, stage="intermediate")
    assert d.teacher_taps.has_logits and d.student_taps.has_logits  # the monitor
    assert d.compute_losses(*_outputs(d, teacher))["prediction"].shape == ()


def _outputs(distiller, teacher):
    x = next(iter(batches(teacher)))
    return (distiller._teacher_forward(x)[0], distiller.student_taps(x),
            x["padding_mask"])


def test_unreadable_head_turns_the_monitor_off_but_fails_a_stage_that_trains_it(
        teacher, monkeypatch):
    student = student_for(teacher)
    recording_taps(monkeypatch, refuse_head_of=[student])
    distiller = kt.Distiller(teacher, student, stage="intermediate")
    assert not distiller.student_taps.has_logits
    assert not distiller.teacher_taps.has_logits  # not built for nothing
    distiller.compile(optimizer="adam")
    history = distiller.fit(batches(teacher), verbose=0).history
    assert set(history) == {"loss", "embedding_loss", "attention_loss", "hidden_loss"}
    with pytest.raises(ValueError, match="cannot read the logits"):
        kt.Distiller(teacher, student, stage="prediction")


class NoAttentionTaps(Taps):
    """A BERT's taps posing as a family without attention (F-Net): no scores."""

    has_attention = False
    num_heads = None

    def __call__(self, inputs, training=False, attention=True, fused_norms=None):
        assert not attention, "the distiller asked a model without attention for it"
        return super().__call__(inputs, training, False, fused_norms)


def without_attention(monkeypatch, model):
    def taps(m, head=None, logits=True):
        cls = NoAttentionTaps if m is model else Taps
        return cls(m, head=head, logits=logits)

    monkeypatch.setattr(distiller_module, "Taps", taps)


def distiller_records(caplog):
    return [r for r in caplog.records if r.name == distiller_module.__name__]


def test_family_without_attention_turns_the_attention_loss_off(
        teacher, monkeypatch, caplog):
    without_attention(monkeypatch, teacher)
    with caplog.at_level(logging.INFO, logger=distiller_module.__name__):
        distiller = kt.Distiller(teacher, student_for(teacher), stage="intermediate")
    (record,) = distiller_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "The attention loss is off: the teacher (BertTextClassifier) has no "
        "attention scores (blocks without self-attention, like F-Net's Fourier "
        "mixing)."
    )
    assert not distiller.trains("attention") and distiller.weights_by_loss["attention"] == 0
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = distiller.fit(batches(teacher, labels=True), epochs=3, verbose=0).history
    assert set(history) == {"loss", "embedding_loss", "hidden_loss", "prediction_loss",
                            "accuracy"}
    np.testing.assert_allclose(
        history["loss"], np.add(history["embedding_loss"], history["hidden_loss"]), rtol=1e-5
    )
    assert history["hidden_loss"][-1] < history["hidden_loss"][0]


def test_family_without_attention_refuses_an_explicit_attention_weight(
        teacher, monkeypatch, caplog):
    without_attention(monkeypatch, teacher)
    student = student_for(teacher)
    with pytest.raises(ValueError, match=r"attention loss reads attention scores, but "
                                         r"the teacher \(BertTextClassifier\) has no"):
        kt.Distiller(teacher, student, loss_weights={"attention": 1.0})
    # Weight 0, or a stage without the attention loss: nothing to say.
    with caplog.at_level(logging.INFO, logger=distiller_module.__name__):
        kt.Distiller(teacher, student, loss_weights={"attention": 0})
        kt.Distiller(teacher, student, stage="prediction")
    assert distiller_records(caplog) == []
