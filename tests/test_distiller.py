"""The Distiller trains the student (and only the student) on TinyBERT's losses."""

import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_tinybert as kt
from keras_tinybert import testing
from keras_tinybert.distiller import Distiller

SENTENCES = [
    "a good film , really",
    "bad movie , boring plot",
    "the best story ever",
    "awful script and dull actors",
    "charming , warm and funny",
    "i hated this stupid film",
    "brilliant performance by the director",
    "too long and too slow",
]
LABELS = [1, 0, 1, 0, 1, 0, 1, 0]


def make_dataset(preprocessor, batch_size=4, repeat=1, labels=True):
    data = (SENTENCES * repeat, LABELS * repeat) if labels else SENTENCES * repeat
    ds = tf.data.Dataset.from_tensor_slices(data).batch(batch_size)
    return ds.map(preprocessor)


@pytest.fixture(scope="module")
def teacher():
    """A tiny teacher fine-tuned on the toy labels, so its logits carry knowledge."""
    model = testing.tiny_classifier(num_layers=4, hidden_dim=48, num_heads=4, seed=1)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(SENTENCES, np.array(LABELS), batch_size=8, epochs=15, verbose=0)
    return model


def student_for(teacher, **kwargs):
    keras.utils.set_random_seed(kwargs.pop("seed", 2))
    shape = dict(num_layers=2, hidden_dim=32, intermediate_dim=64)
    return kt.models.student_like(teacher, **{**shape, **kwargs})


def teacher_weights(teacher):
    return [w.numpy().copy() for w in teacher.weights]


def test_losses_fall_over_30_steps_and_teacher_is_unchanged(teacher):
    distiller = Distiller(teacher, student_for(teacher), stage="joint")
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3))
    eval_ds = make_dataset(teacher.preprocessor)
    start = distiller.evaluate(eval_ds, return_dict=True, verbose=0)
    before = teacher_weights(teacher)
    # 8 sentences x 15 / batch 4 = 30 steps.
    distiller.fit(make_dataset(teacher.preprocessor, repeat=15), verbose=0)
    assert int(distiller.optimizer.iterations.numpy()) == 30
    end = distiller.evaluate(eval_ds, return_dict=True, verbose=0)
    # From random Q/K kernels (std 0.02) the attention scores grow slowly (their
    # gradient is proportional to the other kernel), so that loss falls least.
    falls = {"embedding_loss": 0.7, "hidden_loss": 0.7, "loss": 0.7,
             "attention_loss": 0.97, "prediction_loss": 0.9}
    for name, factor in falls.items():
        assert end[name] < factor * start[name], (name, start[name], end[name])
    after = teacher.weights
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(before, after))


def test_losses_fall_within_one_fit(teacher):
    distiller = Distiller(teacher, student_for(teacher), stage="intermediate")
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3))
    h = distiller.fit(make_dataset(teacher.preprocessor), epochs=6, verbose=0).history
    for name in ("embedding_loss", "attention_loss", "hidden_loss", "loss"):
        assert h[name][-1] < h[name][0], (name, h[name])
    assert h["hidden_loss"][-1] < 0.8 * h["hidden_loss"][0]


def test_teacher_is_not_trainable_and_projections_are_not_the_students(teacher):
    student = student_for(teacher)
    distiller = Distiller(teacher, student, stage="general")
    trainable = {id(w) for w in distiller.trainable_weights}
    assert not trainable & {id(w) for w in teacher.weights}
    # The general stage trains no logits: the student's pooler and head are
    # left out (no optimizer, no weight decay touches them); the rest is trained.
    left_out = [w.path for w in student.trainable_weights if id(w) not in trainable]
    assert sorted(left_out) == ["logits/bias", "logits/kernel",
                                "pooled_dense/bias", "pooled_dense/kernel"]
    joint = Distiller(teacher, student, stage="joint")
    assert {id(w) for w in student.trainable_weights} <= {
        id(w) for w in joint.trainable_weights}
    projections = distiller.embedding_projection.weights + distiller.hidden_projection.weights
    assert {id(w) for w in projections} <= trainable
    assert not {id(w) for w in projections} & {id(w) for w in student.weights}
    assert distiller.hidden_projection.kernel.shape == (32, 48)


def test_shared_projection_is_one_matrix(teacher):
    d = Distiller(teacher, student_for(teacher), shared_projection=True)
    assert d.embedding_projection is d.hidden_projection
    d = Distiller(teacher, student_for(teacher))
    assert d.embedding_projection is not d.hidden_projection


def test_projections_carry_over_to_a_new_distiller(teacher):
    """A stage continued from a saved run starts from its W_e/W_h, not a new W."""
    student = student_for(teacher)
    first = Distiller(teacher, student, stage="intermediate")
    first.compile(optimizer=keras.optimizers.Adam(3e-3))
    first.fit(make_dataset(teacher.preprocessor, repeat=2), verbose=0)
    saved = first.projection_weights()
    assert set(saved) == {"embedding_projection", "hidden_projection"}
    second = Distiller(teacher, student, stage="intermediate")
    second.compile(optimizer=keras.optimizers.Adam(3e-3))
    batch = make_dataset(teacher.preprocessor)
    fresh = second.evaluate(batch, return_dict=True, verbose=0)
    assert set(second.set_projection_weights(saved)) == set(saved)
    carried = second.evaluate(batch, return_dict=True, verbose=0)
    trained = first.evaluate(batch, return_dict=True, verbose=0)
    np.testing.assert_allclose(carried["hidden_loss"], trained["hidden_loss"], rtol=1e-6)
    np.testing.assert_allclose(carried["embedding_loss"], trained["embedding_loss"],
                               rtol=1e-6)
    assert carried["hidden_loss"] < fresh["hidden_loss"]
    # The prediction stage has no projection: nothing to load, nothing loaded.
    assert Distiller(teacher, student, stage="prediction").set_projection_weights(saved) == []


def test_projections_of_another_width_are_refused(teacher):
    saved = Distiller(teacher, student_for(teacher)).projection_weights()
    other = Distiller(teacher, student_for(teacher, hidden_dim=16, num_heads=4))
    with pytest.raises(ValueError, match="student width 16 → teacher width 48"):
        other.set_projection_weights(saved)


@pytest.mark.parametrize(
    "stage, keys",
    [
        ("general", {"loss", "embedding_loss", "attention_loss", "hidden_loss", "prediction_loss"}),
        ("intermediate", {"loss", "embedding_loss", "attention_loss", "hidden_loss", "prediction_loss"}),
        ("prediction", {"loss", "prediction_loss"}),
    ],
)
def test_history_has_per_loss_metrics(teacher, stage, keys):
    distiller = Distiller(teacher, student_for(teacher), stage=stage)
    distiller.compile(optimizer="adam")
    ds = make_dataset(teacher.preprocessor, labels=False)
    history = distiller.fit(ds, validation_data=ds, verbose=0).history
    assert set(history) == keys | {f"val_{k}" for k in keys}


def test_prediction_stage_reports_accuracy_and_trains_only_prediction(teacher):
    distiller = Distiller(teacher, student_for(teacher), stage="prediction")
    assert distiller.embedding_projection is None and distiller.hidden_projection is None
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    ds = make_dataset(teacher.preprocessor)
    logs = distiller.evaluate(ds, return_dict=True, verbose=0)
    student_pred = np.argmax(distiller.predict(ds, verbose=0), -1)
    np.testing.assert_allclose(logs["accuracy"], np.mean(student_pred == LABELS))
    h = distiller.fit(ds, epochs=5, verbose=0).history
    assert h["prediction_loss"][-1] < h["prediction_loss"][0]
    assert h["loss"] == h["prediction_loss"]


def test_prediction_loss_is_monitored_not_trained_in_intermediate(teacher):
    student = student_for(teacher)
    head = student.output_dense.kernel.numpy().copy()
    distiller = Distiller(teacher, student, stage="intermediate")
    distiller.compile(optimizer="adam")
    h = distiller.fit(make_dataset(teacher.preprocessor), verbose=0).history
    assert "prediction_loss" in h
    np.testing.assert_array_equal(student.output_dense.kernel.numpy(), head)
    np.testing.assert_allclose(
        h["loss"][0], h["embedding_loss"][0] + h["attention_loss"][0] + h["hidden_loss"][0],
        rtol=1e-5,
    )


def test_loss_weights_scale_the_total(teacher):
    distiller = Distiller(
        teacher, student_for(teacher), loss_weights={"hidden": 2.0, "attention": 0.5}
    )
    distiller.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = distiller.evaluate(make_dataset(teacher.preprocessor), return_dict=True, verbose=0)
    expected = logs["embedding_loss"] + 2.0 * logs["hidden_loss"] + 0.5 * logs["attention_loss"]
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5)


def test_attention_heads_mean_for_different_head_counts(teacher):
    student = student_for(teacher, num_heads=2)
    with pytest.raises(ValueError, match="4 attention heads and the student 2.*attention_heads='mean'"):
        Distiller(teacher, student)
    distiller = Distiller(teacher, student, attention_heads="mean")
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3))
    h = distiller.fit(make_dataset(teacher.preprocessor), epochs=4, verbose=0).history
    assert h["attention_loss"][-1] < h["attention_loss"][0]


def test_head_mismatch_is_fine_without_attention_loss(teacher):
    Distiller(teacher, student_for(teacher, num_heads=2), loss_weights={"attention": 0})


def test_vocabulary_mismatch(teacher):
    bigger = kt.models.student_like(teacher, 2, 32, 64)
    bigger_backbone = type(bigger.backbone)(
        **{**bigger.backbone.get_config(), "vocabulary_size": 500, "name": "b"}
    )
    with pytest.raises(ValueError, match="Vocabulary mismatch.*student_like"):
        Distiller(teacher.backbone, bigger_backbone, stage="general")


def test_tokenizer_vocabulary_mismatch(teacher):
    import keras_hub

    vocab = testing.tiny_vocabulary()
    vocab[10], vocab[11] = vocab[11], vocab[10]
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True)
    student = student_for(teacher)
    student.preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer)
    with pytest.raises(ValueError, match="first at id 10"):
        Distiller(teacher, student)


def test_student_deeper_than_teacher(teacher):
    with pytest.raises(ValueError, match="must not be deeper"):
        Distiller(teacher, student_for(teacher, num_layers=5))


def test_layer_map_errors_reach_the_user(teacher):
    with pytest.raises(ValueError, match="not an integer"):
        Distiller(teacher, student_for(teacher, num_layers=3))
    Distiller(teacher, student_for(teacher, num_layers=3), layer_map="top")
    d = Distiller(teacher, student_for(teacher), layer_map=[1, 3])
    assert d.layer_map.blocks == [1, 3]


def test_unknown_stage_and_loss_names(teacher):
    with pytest.raises(ValueError, match="Unknown stage 'task'"):
        Distiller(teacher, student_for(teacher), stage="task")
    with pytest.raises(ValueError, match="Unknown loss 'logits'"):
        Distiller(teacher, student_for(teacher), loss_weights={"logits": 1.0})
    with pytest.raises(ValueError, match="nothing to train"):
        Distiller(teacher, student_for(teacher), stage="prediction",
                  loss_weights={"prediction": 0})


def test_prediction_stage_needs_logits(teacher):
    student = student_for(teacher)
    with pytest.raises(ValueError, match="teacher is a bare backbone"):
        Distiller(teacher.backbone, student, stage="prediction")


def test_inputs_without_padding_mask(teacher):
    distiller = Distiller(teacher, student_for(teacher))
    distiller.compile(optimizer="adam")
    ds = make_dataset(teacher.preprocessor, labels=False).map(
        lambda x: {"token_ids": x["token_ids"], "segment_ids": x["segment_ids"]}
    )
    with pytest.raises(ValueError, match="token_ids', 'padding_mask'.*preprocessor"):
        distiller.fit(ds, verbose=0)
    with pytest.raises(ValueError, match="input dict"):
        distiller.fit(tf.data.Dataset.from_tensor_slices(["raw text"]).batch(1), verbose=0)


def test_get_config_round_trip(teacher):
    distiller = Distiller(
        teacher, student_for(teacher), stage="joint", layer_map=[2, 4],
        loss_weights={"prediction": 0.5}, temperature=2.0, attention_masking="exact",
        shared_projection=True, prediction_reduction="elements",
        teacher_precision="bfloat16",
    )
    config = distiller.get_config()
    clone = Distiller.from_config(config)
    for key in ("stage", "temperature", "attention_masking", "shared_projection",
                "prediction_reduction", "weights_by_loss", "teacher_precision"):
        assert getattr(clone, key) == getattr(distiller, key)
    assert clone.layer_map == distiller.layer_map
    backbone = clone.get_config()["student"]["config"]["backbone"]
    assert backbone == config["student"]["config"]["backbone"]
    assert clone.student.count_params() == distiller.student.count_params()


def test_works_with_the_usual_callbacks(teacher, tmp_path):
    distiller = Distiller(teacher, student_for(teacher))
    distiller.compile(optimizer="adam")
    ds = make_dataset(teacher.preprocessor)
    callbacks = [
        keras.callbacks.ModelCheckpoint(
            str(tmp_path / "ckpt.weights.h5"), save_weights_only=True,
            monitor="val_loss", save_best_only=True,
        ),
        keras.callbacks.TensorBoard(str(tmp_path / "tb")),
        keras.callbacks.EarlyStopping(monitor="val_hidden_loss", patience=1),
        keras.callbacks.TerminateOnNaN(),
    ]
    history = distiller.fit(ds, validation_data=ds, epochs=2, callbacks=callbacks, verbose=0)
    assert (tmp_path / "ckpt.weights.h5").exists()
    assert any((tmp_path / "tb" / "train").iterdir())
    assert len(history.history["loss"]) >= 1
    # The checkpoint restores into a fresh distiller with the same structure.
    clone = Distiller(teacher, student_for(teacher, seed=9))
    clone.load_weights(str(tmp_path / "ckpt.weights.h5"))
    np.testing.assert_array_equal(
        clone.student.backbone.token_embedding.embeddings.numpy(),
        distiller.student.backbone.token_embedding.embeddings.numpy(),
    )


def test_terminate_on_nan_stops_a_diverging_run(teacher):
    distiller = Distiller(teacher, student_for(teacher))
    distiller.compile(optimizer=keras.optimizers.SGD(1e12))
    history = distiller.fit(
        make_dataset(teacher.preprocessor, repeat=10), epochs=3, verbose=0,
        callbacks=[keras.callbacks.TerminateOnNaN()],
    )
    assert len(history.history["loss"]) == 1 and not np.isfinite(history.history["loss"][0])


def test_mirrored_two_replicas_equal_one():
    """One step on 2 replicas (2 logical CPUs) gives the same update as on 1."""
    script = os.path.join(os.path.dirname(__file__), "distributed_step.py")
    out = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK" in out.stdout, out.stdout


def test_bfloat16_teacher_losses_within_one_percent_and_teacher_untouched(teacher):
    """A bfloat16 teacher forward (a copy) gives the float32 losses within 1%."""
    before = teacher_weights(teacher)
    student = student_for(teacher)
    exact = Distiller(teacher, student, stage="joint")
    fast = Distiller(teacher, student, stage="joint", teacher_precision="bfloat16")
    for name in ("embedding_projection", "hidden_projection"):
        getattr(fast, name).set_weights(getattr(exact, name).get_weights())
    x, _ = next(iter(make_dataset(teacher.preprocessor, batch_size=8)))
    student_out = exact.student_taps(x)
    bf16_out = fast._teacher_forward(x)[0]
    assert bf16_out["hidden"][0].dtype == tf.float32
    assert fast.teacher_taps.model is not teacher
    assert fast.teacher_taps.blocks[0].compute_dtype == "bfloat16"
    expected = exact.compute_losses(exact._teacher_forward(x)[0], student_out, x["padding_mask"])
    got = fast.compute_losses(bf16_out, student_out, x["padding_mask"])
    for name, value in expected.items():
        np.testing.assert_allclose(float(got[name]), float(value), rtol=1e-2, err_msg=name)
    assert not np.allclose(bf16_out["hidden"][-1], exact._teacher_forward(x)[0]["hidden"][-1],
                           rtol=0, atol=1e-7)  # it really ran in bfloat16
    # The user's teacher keeps float32, its weights, and is saved once.
    assert teacher.backbone.transformer_layers[0].compute_dtype == "float32"
    assert len(fast.weights) == len(exact.weights)
    fast.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = fast.fit(make_dataset(teacher.preprocessor, repeat=2), epochs=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    for a, b in zip(before, teacher_weights(teacher)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="teacher_precision"):
        Distiller(teacher, student, teacher_precision="float16")


@pytest.mark.slow
def test_jax_distiller_equals_tensorflow(tmp_path):
    """The real `kt.Distiller` and `kt.Taps` under KERAS_BACKEND=jax (Keras'
    stateless steps call `compute_loss`; the taps run `keras.ops`) against
    TensorFlow's `train_step` and fast kernels, for every stage (general,
    intermediate, joint, prediction), from the same weights and batch (tests/jax_distiller_step.py);
    the JAX-trained student then ships from TensorFlow.

    Both are float32 and sum the same terms in another order (XLA vs TF kernels):
    we measured ≤ 2.3e-7 relative on the losses and ≤ 9e-7 of each tensor's
    largest entry on the weights after two SGD steps, and assert 1e-5 (plus
    1e-9 absolute: the key biases get a gradient that is zero in exact
    arithmetic, softmax being shift-invariant, and hold ~1e-16 rounding noise).
    SGD carries a weight decay: in the intermediate stage the student's pooler
    and head are outside the trained weights and stay unchanged on both
    backends (JAX's zero gradients would otherwise let the decay shrink them).
    The teacher-logit cache (`kt.data.teacher_logits`, jax.jit per bucket
    length) gives TensorFlow's logits.
    """
    import importlib.util
    import json

    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install keras-tinybert[jax])")
    script = os.path.join(os.path.dirname(__file__), "jax_distiller_step.py")
    for backend in ("tensorflow", "jax"):
        run = subprocess.run([sys.executable, script, backend, str(tmp_path)],
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
    for stage in ("general", "intermediate", "joint", "prediction"):
        results = {}
        for backend in ("tensorflow", "jax"):
            out = str(tmp_path / f"{backend}-{stage}")
            with open(out + ".json") as f:
                results[backend] = json.load(f)
            results[backend]["weights"] = dict(np.load(out + ".npz"))
        tf_run, jax_run = results["tensorflow"], results["jax"]
        assert (tf_run["backend"], jax_run["backend"]) == ("tensorflow", "jax")
        assert tf_run["taps"] == jax_run["taps"] == "keras_tinybert.taps.reader"
        for when in ("before", "after"):
            assert set(tf_run[when]) == set(jax_run[when])
            for name, value in tf_run[when].items():
                np.testing.assert_allclose(jax_run[when][name], value, rtol=1e-5,
                                           err_msg=f"{stage} {when} {name}")
        assert set(tf_run["fit"]) == set(jax_run["fit"])  # the same History keys
        assert tf_run["trained"] == jax_run["trained"]
        for path, value in tf_run["weights"].items():
            np.testing.assert_allclose(
                jax_run["weights"][path], value, rtol=0,
                # Adam divides by sqrt(v): float32 rounding of the two backends' sums
                # (order differs) shows up to ~1e-5 relative in a bias of 2 numbers.
                atol=1e-4 * np.abs(value).max() + 1e-8, err_msg=f"{stage} {path}")
        for run_ in (tf_run, jax_run):
            assert run_["untrained_changed"] == []
    cached = {b: np.load(tmp_path / f"{b}-teacher_logits.npy")
              for b in ("tensorflow", "jax")}
    assert cached["jax"].shape == (8, 2)
    np.testing.assert_allclose(cached["jax"], cached["tensorflow"], rtol=1e-5,
                               atol=1e-6)
    _export_jax_trained_student(tmp_path)
    intermediate = json.load(open(tmp_path / "jax-intermediate.json"))
    assert intermediate["after"]["loss"] < 0.8 * intermediate["before"]["loss"]
    assert not any(p.startswith(("pooled_dense", "logits"))
                   for p in intermediate["trained"])


def _export_jax_trained_student(folder):
    """The student trained on JAX, saved as `.keras`, loads here (TensorFlow) with
    JAX's logits, and exports to a SavedModel and a TFLite file that verify."""
    from keras_tinybert import export as kt_export

    student = keras.saving.load_model(folder / "jax-student.keras")
    sentences = testing.review_sentences(24, seed=3)
    batch = dict(np.load(folder / "jax-student_logits.npz"))
    logits = batch.pop("logits")
    np.testing.assert_allclose(np.asarray(student(batch)), logits, atol=1e-5)
    saved = kt_export.saved_model(student, folder / "serving", preprocessor=student.preprocessor)
    lite = folder / "student.tflite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kt_export.ClientMetadataWarning)
        kt_export.tflite(student, lite, outputs="logits")
    for path in (saved, lite):
        parity = kt_export.verify(path, student, sentences)
        assert parity.max_abs_diff < 1e-4, path


def test_an_untested_backend_is_refused_at_construction(monkeypatch):
    teacher = testing.tiny_classifier(num_layers=2, hidden_dim=32, seed=1)
    student = kt.models.student_like(teacher, 1, 16, 32)
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(ValueError, match=r"\('tensorflow', 'jax'\); this process runs 'torch'"):
        Distiller(teacher, student)


@pytest.mark.slow
def test_jax_data_parallel_gives_one_devices_weights(tmp_path):
    """`keras.distribution.DataParallel` over two CPU devices (XLA's
    --xla_force_host_platform_device_count=2) trains the Distiller as one device
    does (tests/jax_data_parallel.py): each device takes half of every batch, and
    the averaged gradients give the same steps. The two runs sum in another order:
    we measured ≤ 3.5e-7 of each tensor's largest entry after two SGD steps, and
    assert 1e-5."""
    import importlib.util
    import json

    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install keras-tinybert[jax])")
    script = os.path.join(os.path.dirname(__file__), "jax_data_parallel.py")
    results = {}
    for mode in ("one", "two"):
        out = str(tmp_path / f"{mode}.npz")
        run = subprocess.run([sys.executable, script, mode, out], capture_output=True,
                             text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        with open(out + ".json") as f:
            results[mode] = {**json.load(f), "weights": dict(np.load(out))}
    one, two = results["one"], results["two"]
    assert (one["devices"], two["devices"]) == (1, 2)  # really replicated on two devices
    assert set(one["history"]) == set(two["history"])
    for name, values in one["history"].items():
        np.testing.assert_allclose(two["history"][name], values, rtol=1e-5, err_msg=name)
    assert one["history"]["loss"][1] < one["history"]["loss"][0]
    for path, value in one["weights"].items():
        np.testing.assert_allclose(two["weights"][path], value, rtol=0,
                                   atol=1e-5 * np.abs(value).max() + 1e-9, err_msg=path)
