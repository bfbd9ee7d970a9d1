"""tf.distribute with the real engine: two worker processes, mixed precision."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_tinybert as kt
from keras_tinybert import testing

JOB = os.path.join(os.path.dirname(__file__), "multi_worker_job.py")


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def env_without_tf_config(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(extra)
    return env


@pytest.mark.slow
def test_two_workers_equal_one_process(tmp_path):
    """MultiWorkerMirroredStrategy, 2 CPU workers on 127.0.0.1, vs 1 process.

    The same 3 global batches, SGD: the update is linear in the gradient, and the
    two runs differ only in float32 summation order (all-reduce of two half-batch
    gradients vs one sum), ~1e-6 relative per step; after 3 steps we allow
    rtol=1e-3 / atol=1e-6. Without the 1/num_replicas loss scaling every update
    would double, far outside that.
    """
    single = subprocess.run([sys.executable, JOB, tmp_path / "single.npz"],
                            env=env_without_tf_config(), capture_output=True,
                            text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    assert "replicas 1" in single.stdout

    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        procs.append(subprocess.Popen(
            [sys.executable, JOB, tmp_path / "multi.npz"],
            env=env_without_tf_config(TF_CONFIG=json.dumps(config)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        assert "replicas 2" in out

    a, b = np.load(tmp_path / "single.npz"), np.load(tmp_path / "multi.npz")
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-4)
    arrays = [k for k in a.files if k != "loss"]
    assert len(arrays) > 10
    for key in arrays:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-3, atol=1e-6)


def test_auto_strategy_picks_by_environment(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("TPU_NAME", raising=False)
    assert kt.distribute.resolve_kind("auto") == "default"
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}))
    assert kt.distribute.resolve_kind("auto") == "multi_worker"
    monkeypatch.setenv("TPU_NAME", "my-tpu")
    assert kt.distribute.resolve_kind("auto") == "tpu"
    assert kt.distribute.resolve_kind("mirrored") == "mirrored"
    with pytest.raises(ValueError, match="Unknown strategy 'gpu'"):
        kt.distribute.resolve_kind("gpu")


def test_multi_worker_without_tf_config_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        kt.distribute.strategy("multi_worker")


def test_unknown_precision():
    with pytest.raises(ValueError, match="Unknown mixed precision 'int4'"):
        kt.distribute.mixed_precision("int4")


def _build_under(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        teacher = testing.tiny_classifier(num_layers=4, hidden_dim=48, seed=1)
        student = kt.models.student_like(teacher, 2, 32, 64)
        keras.utils.set_random_seed(5)
        distiller = kt.Distiller(teacher, student, stage="joint")
        distiller.compile(optimizer="adam")
        return distiller, teacher, student
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_mixed_precision_losses_match_float32(mode):
    """The same weights and batch: mixed-precision losses vs float32 losses.

    bfloat16 keeps 8 significant bits (relative rounding 2^-8 ≈ 0.4%) and float16
    11 bits; a 4-block forward accumulates a few such errors, so we allow 3% (bf16)
    and 1% (fp16) on each loss component.
    """
    sentences = ["a good film , really", "bad movie , boring plot",
                 "the best story ever", "awful script and dull actors"]
    f32, teacher, student = _build_under("float32")
    mixed, m_teacher, m_student = _build_under(kt.distribute.PRECISIONS[mode])
    testing.vary_weights(teacher, sentences)  # unit-scale activations and scores
    testing.vary_weights(student, sentences, seed=1)
    m_teacher.set_weights(teacher.get_weights())
    m_student.set_weights(student.get_weights())
    for src, dst in ((f32.embedding_projection, mixed.embedding_projection),
                     (f32.hidden_projection, mixed.hidden_projection)):
        dst.set_weights(src.get_weights())
    x = teacher.preprocessor(sentences)
    ds = tf.data.Dataset.from_tensors(x)
    a = f32.evaluate(ds, return_dict=True, verbose=0)
    b = mixed.evaluate(ds, return_dict=True, verbose=0)
    assert student.backbone.transformer_layers[0].compute_dtype == "float32"
    assert m_student.backbone.transformer_layers[0].compute_dtype != "float32"
    tolerance = {"bf16": 0.03, "fp16": 0.01}[mode]
    for name in ("embedding_loss", "attention_loss", "hidden_loss", "prediction_loss"):
        assert abs(b[name] - a[name]) <= tolerance * abs(a[name]), (name, a[name], b[name])


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_distillation_trains(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        teacher = testing.tiny_classifier(num_layers=4, hidden_dim=48, seed=1)
        student = kt.models.student_like(teacher, 2, 32, 64)
        distiller = kt.Distiller(teacher, student, stage="intermediate")
        distiller.compile(optimizer=keras.optimizers.Adam(3e-3))
        ds = tf.data.Dataset.from_tensor_slices(
            ["a good film", "bad movie , boring", "the best story", "awful"] * 2
        ).batch(4).map(teacher.preprocessor)
        h = distiller.fit(ds, epochs=5, verbose=0).history
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert all(np.isfinite(v).all() for v in h.values())
    assert h["hidden_loss"][-1] < h["hidden_loss"][0]
    assert distiller.hidden_projection.kernel.dtype == "float32"
    # fp16 trains through Keras' LossScaleOptimizer (the distiller scales its loss).
    scaled = isinstance(distiller.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (policy == "mixed_float16")
