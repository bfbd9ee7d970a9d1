"""Every keras-hub text-encoder family as teacher and student, through the
public API: `kt.models.student_like`, the taps, and `kt.Distiller` in each stage.

Tiny models (4-layer teacher, 2-layer student), each family's real tokenizer
type, a few steps per stage: every trained loss is finite and falls. The
stages run eagerly (tracing a train step costs more than the steps here); the
compiled path is covered by tests/test_taps.py and the `slow` case below.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_tinybert as kt
from keras_tinybert import testing
from keras_tinybert.config import parse_shape

FAMILIES = sorted(testing.FAMILIES)
TASK_FAMILIES = [f for f in FAMILIES if testing.FAMILIES[f].classifier is not None]
SENTENCES = testing.tiny_sentences(16, seed=3)
LEARNING_RATES = {"general": 3e-3, "intermediate": 3e-3, "prediction": 1e-2}

def _with_padding_mask(model, x):
    """F-Net's and RoFormerV2's preprocessors give no `padding_mask` (their
    backbones take none), which the Distiller requires for its masks: derived
    here from the pad token until the data pipeline or the Distiller does it."""
    if "padding_mask" not in x:
        pad = testing.preprocessor_of(model).tokenizer.pad_token_id
        x = {**x, "padding_mask": (x["token_ids"] != pad).astype("int32")}
    return x


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    """(name, teacher, dataset): a 4-layer teacher with weights spread so that
    its scores and logits are informative, and 2 batches of its inputs."""
    teacher = testing.spread_weights(testing.tiny_family_model(
        request.param, num_layers=4, hidden_dim=32, num_heads=4, seed=1))
    x = _with_padding_mask(teacher, testing.family_inputs(teacher, SENTENCES))
    y = np.arange(len(SENTENCES)) % 2
    return request.param, teacher, tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def _student(teacher):
    keras.utils.set_random_seed(2)
    return kt.models.student_like(teacher, num_layers=2, hidden_dim=24, intermediate_dim=48)


def _distil(teacher, student, stage, data, epochs=3, run_eagerly=True):
    distiller = kt.Distiller(teacher, student, stage=stage)
    distiller.compile(optimizer=keras.optimizers.Adam(LEARNING_RATES[stage]),
                      run_eagerly=run_eagerly)
    return distiller.fit(data, epochs=epochs, verbose=0).history, distiller


def _assert_trained_losses_fall(history, distiller):
    trained = [n for n in ("embedding", "attention", "hidden", "prediction")
               if distiller.trains(n)]
    assert trained
    for name in trained + ["total"]:
        values = history["loss" if name == "total" else f"{name}_loss"]
        assert np.all(np.isfinite(values)), (name, values)
        assert values[-1] < values[0], (name, values)


def test_student_like(family):
    name, teacher, data = family
    student = _student(teacher)
    taps, teacher_taps = kt.Taps(student), kt.Taps(teacher)
    assert type(student) is type(teacher)
    assert taps.num_layers == 2 and taps.hidden_dim == 24
    assert taps.num_heads == teacher_taps.num_heads
    assert taps.has_logits == teacher_taps.has_logits
    assert kt.taps.vocabulary_size(student) == kt.taps.vocabulary_size(teacher)
    # the command line's --student-shape; heads asked of F-Net (none) are a clear error
    shape = "1L-16H-40I" + ("" if teacher_taps.num_heads is None else "-2A")
    shaped = kt.Taps(kt.models.student_like(teacher, **parse_shape(shape)))
    assert (shaped.num_layers, shaped.hidden_dim, shaped.num_heads) == (
        1, 16, None if teacher_taps.num_heads is None else 2)
    if teacher_taps.num_heads is None:
        with pytest.raises(ValueError, match="without num_heads"):
            kt.models.student_like(teacher, **parse_shape("1L-16H-40I-2A"))


def test_taps_parity(family):
    name, teacher, data = family
    x, _ = next(iter(data))
    testing.check_taps(teacher, {k: np.asarray(v) for k, v in x.items()})


@pytest.mark.parametrize("stage", ["general", "intermediate"])
def test_layer_stages(family, stage):
    """Embedding, attention (not for F-Net: the Distiller turns it off) and
    hidden-state losses."""
    name, teacher, data = family
    if stage == "general":  # pre-trained encoders, plain text: backbones
        teacher = getattr(teacher, "backbone", teacher)
        data = data.map(lambda x, y: x)
    history, distiller = _distil(teacher, _student(teacher), stage, data)
    assert distiller.trains("attention") == (name != "f_net")
    _assert_trained_losses_fall(history, distiller)


@pytest.mark.parametrize("family", TASK_FAMILIES, indirect=True)
def test_prediction_stage(family):
    name, teacher, data = family
    history, distiller = _distil(teacher, _student(teacher), "prediction", data)
    _assert_trained_losses_fall(history, distiller)


def test_an_attention_weight_on_f_net_is_an_error():
    teacher = testing.tiny_family_model("f_net", num_layers=2)
    with pytest.raises(ValueError, match="attention"):
        kt.Distiller(teacher, _student(teacher), stage="intermediate",
                     loss_weights={"attention": 1.0})


@pytest.mark.slow
@pytest.mark.parametrize("family", ["albert", "deberta_v3", "roformer_v2", "f_net"],
                         indirect=True)
def test_compiled_intermediate_stage(family):
    """The compiled train step (what `fit` runs by default) on the new adapters."""
    name, teacher, data = family
    history, distiller = _distil(teacher, _student(teacher), "intermediate", data,
                                 run_eagerly=False)
    _assert_trained_losses_fall(history, distiller)
