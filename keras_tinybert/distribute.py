"""Run a distillation on the hardware at hand: GPUs, machines, TPUs, mixed precision.

    strategy = kt.distribute.strategy("auto")
    kt.distribute.mixed_precision("bf16")          # before the models are built
    with strategy.scope():
        teacher, student = ..., ...
        distiller = kt.Distiller(teacher, student)
        distiller.compile(optimizer=kt.optimizers.AdamW(1e-4))
    distiller.fit(dataset_of_global_batches, ...)

On JAX, `strategy` returns a `JaxDataParallel` (Keras' `DataParallel` over the
local devices) instead. Keras distributes a `tf.data` input itself: each dataset batch is the *global* batch,
split across replicas (and, on several machines, sharded by worker). The distiller
divides its loss by `num_replicas_in_sync`, so N replicas take the step one replica
would take on the same global batch (tests check this for 2 replicas and 2 workers).
"""

import contextlib
import json
import os

import keras
import tensorflow as tf

KINDS = ("auto", "default", "mirrored", "multi_worker", "tpu")
PRECISIONS = {"none": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def _cluster_workers():
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    cluster = config.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _tpu_configured(tpu):
    return bool(tpu or os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"))


def resolve_kind(kind="auto", tpu=None):
    """The strategy `kind` that `"auto"` stands for on this machine."""
    if kind not in KINDS:
        raise ValueError(f"Unknown strategy {kind!r}: use one of {KINDS}.")
    if kind != "auto":
        return kind
    if _tpu_configured(tpu):
        return "tpu"
    if _cluster_workers() > 1:
        return "multi_worker"
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return "mirrored"
    return "default"


def strategy(kind="auto", tpu=None, devices=None):
    """A `tf.distribute.Strategy` (on JAX, a `JaxDataParallel`).

    Args:
        kind: ``"auto"`` picks a TPU when one is configured (``tpu`` or
            ``$TPU_NAME``), MultiWorkerMirrored when ``$TF_CONFIG`` names several
            workers, Mirrored with several GPUs, and the default strategy otherwise.
        tpu: TPU name or address for ``TPUClusterResolver`` ("" / "local" on a
            TPU VM).
        devices: devices for ``"mirrored"`` (default: all GPUs, else the CPU).
    """
    if keras.backend.backend() == "jax":
        return jax_data_parallel(kind)
    kind = resolve_kind(kind, tpu)
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if kind == "multi_worker":
        if _cluster_workers() < 1:
            raise ValueError(
                "strategy='multi_worker' needs $TF_CONFIG with a cluster spec, e.g. "
                '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}} on each machine.'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=tpu or os.environ.get("TPU_NAME", "")
    )
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


class JaxDataParallel:
    """On JAX (no tf.distribute): Keras' `DataParallel` over this host's devices, set
    for the process, so that `fit` splits every global batch over them and averages
    the gradients (variables are replicated as they are created: call this before
    building the models). It has the two members of a strategy that runs read."""

    def __init__(self, devices):
        self.num_replicas_in_sync = len(devices)
        if len(devices) > 1:
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))

    def scope(self):
        return contextlib.nullcontext()


def jax_data_parallel(kind="auto"):
    """The JAX form of `strategy(kind)`: "auto", "mirrored" and "tpu" take every local
    device (a TPU VM's cores, or XLA's host devices), "default" one."""
    import jax

    if kind not in KINDS:
        raise ValueError(f"Unknown strategy {kind!r}: use one of {KINDS}.")
    if kind == "multi_worker":
        raise ValueError("strategy='multi_worker' is TensorFlow's (TF_CONFIG); on JAX, run one "
                         "process per host after jax.distributed.initialize() with "
                         "keras.distribution.DataParallel, or use KERAS_BACKEND=tensorflow.")
    devices = jax.devices()
    return JaxDataParallel(devices[:1] if kind == "default" else devices)


def mixed_precision(mode="none"):
    """Set Keras' global dtype policy: ``"none"``, ``"bf16"`` or ``"fp16"``.

    Call it before building the models. Weights stay float32; matmuls run in
    bfloat16/float16; the distiller's losses are computed in float32; under fp16,
    `compile` wraps the optimizer in a `LossScaleOptimizer` (Keras does this for a
    mixed_float16 model) and the distiller applies its loss scale. keras-hub's
    attention mask uses a dtype-aware large negative, and the paper's −100 threshold
    of the attention loss is applied in float32, so nothing overflows in fp16.
    """
    if mode not in PRECISIONS:
        raise ValueError(
            f"Unknown mixed precision {mode!r}: use one of {sorted(PRECISIONS)}."
        )
    keras.mixed_precision.set_global_policy(PRECISIONS[mode])
    return PRECISIONS[mode]


def shard_by_data(dataset):
    """Shard a dataset across workers element by element (after rebatching).

    Each worker reads the same pipeline and keeps its slice of every global batch,
    which keeps the global batches identical to a single-machine run.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options)
