"""TinyBERT's Transformer distillation as a `keras.Model` (§3.1, Eq. 11).

    L = Σ_m λ_m · L_layer(S_m, T_g(m))

with L_layer the embedding loss for m = 0, the attention and hidden-state losses for
the blocks m = 1..M, and the prediction loss for m = M+1. A *stage* picks which of
the four are trained (§3.2):

- ``"general"``: embedding + attention + hidden, pre-trained teacher, plain text;
- ``"intermediate"``: the same, fine-tuned teacher, task data (first half of the
  task-specific distillation);
- ``"prediction"``: the prediction loss alone (second half);
- ``"joint"``: all four at once (a single-stage shortcut, not the paper's recipe).

``loss_weights`` re-weights them; a loss whose weight is 0 is not trained. The
learnable projections W_e (embeddings) and W_h (hidden states) that map the
student's width to the teacher's belong to the distiller, never to the student.
"""

import json

import keras
import tensorflow as tf
from keras import ops
from keras.src.trainers.compile_utils import MetricsList

from keras_tinybert import losses
from keras_tinybert.data.inputs import TEACHER_LOGITS
from keras_tinybert.layer_map import layer_map as make_layer_map
from keras_tinybert.taps import Taps, backbone_of

LOSS_NAMES = ("embedding", "attention", "hidden", "prediction")
STAGES = {
    "general": ("embedding", "attention", "hidden"),
    "intermediate": ("embedding", "attention", "hidden"),
    "prediction": ("prediction",),
    "joint": LOSS_NAMES,
}
REQUIRED_INPUTS = ("token_ids", "padding_mask")


def _vocabulary(model):
    """The tokenizer's vocabulary list if the model carries a preprocessor."""
    tokenizer = getattr(getattr(model, "preprocessor", None), "tokenizer", None)
    if tokenizer is None or not hasattr(tokenizer, "get_vocabulary"):
        return None
    try:
        return list(tokenizer.get_vocabulary())
    except Exception:  # a tokenizer whose vocabulary is not loaded yet
        return None


def check_vocabularies(teacher, student):
    """Teacher and student must read the same token ids (error otherwise)."""
    t_size = backbone_of(teacher).vocabulary_size
    s_size = backbone_of(student).vocabulary_size
    if t_size != s_size:
        raise ValueError(
            f"Vocabulary mismatch: the teacher has {t_size} token embeddings and "
            f"the student {s_size}. TinyBERT feeds the same token ids to both, so "
            f"they need the same vocabulary: build the student with "
            f"`kt.models.student_like(teacher, ...)`."
        )
    t_vocab, s_vocab = _vocabulary(teacher), _vocabulary(student)
    if t_vocab is not None and s_vocab is not None and t_vocab != s_vocab:
        first = next(i for i, (a, b) in enumerate(zip(t_vocab, s_vocab)) if a != b)
        raise ValueError(
            f"Vocabulary mismatch: the teacher's and the student's tokenizers "
            f"differ, first at id {first} ({t_vocab[first]!r} vs "
            f"{s_vocab[first]!r}). Give the student the teacher's preprocessor "
            f"(`kt.models.student_like` does)."
        )


def _resolve_weights(stage, loss_weights):
    if stage not in STAGES:
        raise ValueError(
            f"Unknown stage {stage!r}: use one of {sorted(STAGES)} "
            f"(general → intermediate → prediction is the paper's recipe)."
        )
    weights = {name: (1.0 if name in STAGES[stage] else 0.0) for name in LOSS_NAMES}
    for name, value in (loss_weights or {}).items():
        if name not in LOSS_NAMES:
            raise ValueError(
                f"Unknown loss {name!r} in loss_weights: the TinyBERT losses are "
                f"{LOSS_NAMES}."
            )
        weights[name] = float(value)
    if not any(weights.values()):
        raise ValueError(f"All loss weights are 0 ({weights}): nothing to train.")
    return weights


TEACHER_PRECISIONS = ("float32", "bfloat16")


def bfloat16_copy(model):
    """A copy of `model` computing in bfloat16 (float32 weights, `mixed_bfloat16`).

    The user's model is untouched: the copy is rebuilt from its config and given
    its weights, then every layer's dtype policy is set to `mixed_bfloat16`. The
    distiller keeps it only inside its `Taps` (a plain object), so Keras does not
    track it: checkpoints hold the teacher's weights once.
    """
    copy = _deserialize(keras.saving.serialize_keras_object(model))
    copy.set_weights(model.get_weights())
    copy.trainable = False
    for layer in copy._flatten_layers(include_self=True):
        if layer.dtype_policy.name == "float32":
            layer.dtype_policy = "mixed_bfloat16"
    return copy


def _deserialize(spec):
    """A model from its serialised config; a copy first, since keras-hub's
    `Task.from_config` edits its config in place."""
    return keras.saving.deserialize_keras_object(json.loads(json.dumps(spec)))


def _teacher_in(teacher, precision):
    if precision not in TEACHER_PRECISIONS:
        raise ValueError(
            f"teacher_precision must be one of {TEACHER_PRECISIONS}, got {precision!r}."
        )
    return teacher if precision == "float32" else bfloat16_copy(teacher)


class _Metrics(MetricsList):
    """The distiller's metrics, seen by callbacks as Keras' compiled metrics are.

    `result()` gives the metrics that the train/test step logs (`logged`, set when
    the step is traced), so that Keras' end-of-epoch logs are exactly the step's.
    """

    logged = ()

    def result(self):
        return {m.name: m.result() for m in self.metrics if m.name in self.logged}

    def get_config(self):
        return {"name": self.name}


@keras.saving.register_keras_serializable(package="keras_tinybert")
class Distiller(keras.Model):
    """Distil a keras-hub BERT-family teacher into a smaller student (TinyBERT).

    Args:
        teacher: keras-hub backbone or task model (e.g. `BertTextClassifier`);
            frozen: never trained, never in `trainable_weights`.
        student: a model of the same family with the teacher's vocabulary and at
            most as many blocks (see `kt.models.student_like`).
        stage: ``"general"``, ``"intermediate"``, ``"prediction"`` or ``"joint"``.
        layer_map: ``"uniform"`` (default), ``"top"``, ``"bottom"``, a list of M
            teacher blocks (1-based), or a `kt.LayerMap`.
        loss_weights: dict overriding the stage's weights, keys among
            ``embedding``, ``attention``, ``hidden``, ``prediction``.
        temperature: t of the prediction loss (the paper uses 1).
        attention_heads: ``"same"`` (head i ↔ head i, the paper) or ``"mean"``
            (average over heads first; for different head counts).
        attention_masking: ``"paper"`` (padded keys zeroed, as the paper's code)
            or ``"exact"`` (only real query/key pairs count).
        shared_projection: one W for embeddings and hidden states, as the paper's
            code does (``fit_dense``); default False: W_e and W_h as in the paper.
        prediction_reduction: ``"batch"`` (the paper's Eq. 10) or ``"elements"``
            (the paper's code, which also averages over classes).
        teacher_precision: ``"float32"`` (default) or ``"bfloat16"``: run the
            frozen teacher's forward pass under ``mixed_bfloat16`` (a copy of the
            teacher; its outputs are cast back to float32 for the losses). Faster
            on CPUs with AVX512-BF16/AMX and on TPUs; see docs/PERFORMANCE.md.

    `fit` logs ``loss`` and ``<name>_loss`` for every trained loss, plus
    ``prediction_loss`` as a monitor whenever both models have logits, and
    ``accuracy`` of the student when the data carries labels.
    """

    def __init__(
        self,
        teacher,
        student,
        stage="intermediate",
        layer_map="uniform",
        loss_weights=None,
        temperature=1.0,
        attention_heads="same",
        attention_masking="paper",
        shared_projection=False,
        prediction_reduction="batch",
        teacher_precision="float32",
        name="tinybert_distiller",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.stage = stage
        self.weights_by_loss = _resolve_weights(stage, loss_weights)
        self.loss_weights_config = dict(loss_weights or {})
        self.temperature = float(temperature)
        self.attention_heads = attention_heads
        self.attention_masking = attention_masking
        self.shared_projection = bool(shared_projection)
        self.prediction_reduction = prediction_reduction
        self._check_options()

        self.teacher = teacher
        self.student = student
        self.teacher.trainable = False
        self.teacher_precision = teacher_precision
        self.teacher_taps = Taps(_teacher_in(teacher, teacher_precision))
        self.student_taps = Taps(student)
        check_vocabularies(teacher, student)
        self.layer_map = make_layer_map(
            layer_map, self.student_taps.num_layers, self.teacher_taps.num_layers
        )
        self._check_heads()
        self._check_logits()
        self._build_projections()
        self._trackers = {
            n: keras.metrics.Mean(name="loss" if n == "total" else f"{n}_loss")
            for n in ("total",) + LOSS_NAMES
        }
        for tracker in self._trackers.values():
            tracker._direction = "down"  # what callbacks' mode="auto" looks for
        self._accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self._metrics_list = _Metrics(
            list(self._trackers.values()) + [self._accuracy], name="tinybert_metrics"
        )
        self.built = True  # every sub-layer is built: no symbolic build needed

    # ---------------------------------------------------------------- set-up --
    def _check_options(self):
        if self.attention_heads not in losses.HEAD_MODES:
            raise ValueError(
                f"attention_heads must be one of {losses.HEAD_MODES}, got "
                f"{self.attention_heads!r}."
            )
        if self.attention_masking not in losses.ATTENTION_MASKING:
            raise ValueError(
                f"attention_masking must be one of {losses.ATTENTION_MASKING}, got "
                f"{self.attention_masking!r}."
            )
        if self.prediction_reduction not in losses.PREDICTION_REDUCTIONS:
            raise ValueError(
                f"prediction_reduction must be one of {losses.PREDICTION_REDUCTIONS}"
                f", got {self.prediction_reduction!r}."
            )

    def _check_heads(self):
        t, s = self.teacher_taps.num_heads, self.student_taps.num_heads
        if self.trains("attention") and t != s and self.attention_heads == "same":
            raise ValueError(
                f"Head-count mismatch: the teacher has {t} attention heads and the "
                f"student {s}, so the attention loss cannot compare head i with "
                f"head i. Build the student with num_heads={t}, or pass "
                f"attention_heads='mean' to compare the head-averaged scores."
            )

    def _check_logits(self):
        if self.trains("prediction") and (
            self.teacher_taps.head is None or self.student_taps.head is None
        ):
            who = [n for n, t in (("teacher", self.teacher_taps),
                                  ("student", self.student_taps)) if t.head is None]
            raise ValueError(
                f"The prediction loss needs logits, but the {' and '.join(who)} "
                f"{'is a bare backbone' if len(who) == 1 else 'are bare backbones'}"
                f". Use task models (e.g. BertTextClassifier) for stage "
                f"{self.stage!r}, or set loss_weights={{'prediction': 0}}."
            )

    def _build_projections(self):
        """W_e and W_h: Dense maps from the student's width to the teacher's."""
        d_s, d_t = self.student_taps.hidden_dim, self.teacher_taps.hidden_dim
        self.embedding_projection = self.hidden_projection = None
        if self.trains("hidden") or (self.shared_projection and self.trains("embedding")):
            self.hidden_projection = keras.layers.Dense(d_t, name="hidden_projection")
            self.hidden_projection.build((None, None, d_s))
        if self.trains("embedding"):
            if self.shared_projection:
                self.embedding_projection = self.hidden_projection
            else:
                self.embedding_projection = keras.layers.Dense(
                    d_t, name="embedding_projection"
                )
                self.embedding_projection.build((None, None, d_s))

    def _projections(self):
        """The distinct projection layers by name (one when shared)."""
        layers = (self.embedding_projection, self.hidden_projection)
        return {layer.name: layer for layer in layers if layer is not None}

    def projection_weights(self):
        """W_e and W_h as ``{name: [kernel, bias]}`` NumPy arrays.

        Saved with a run so that the next stage starts from them rather than from
        a random W: the paper's code keeps its projection (``fit_dense``) inside
        the general TinyBERT checkpoint that task distillation starts from.
        """
        return {name: [keras.ops.convert_to_numpy(w) for w in layer.weights]
                for name, layer in self._projections().items()}

    def set_projection_weights(self, weights):
        """Load `projection_weights()` of an earlier distiller; returns the names
        loaded. A projection this distiller does not train is ignored; one whose
        shape differs (another teacher or student width) raises ValueError."""
        loaded = []
        for name, layer in self._projections().items():
            if name not in weights:
                continue
            new = [tuple(w.shape) for w in layer.weights]
            old = [tuple(w.shape) for w in weights[name]]
            if new != old:
                raise ValueError(
                    f"{name}: saved weights have shapes {old}, this distiller needs "
                    f"{new} (student width {self.student_taps.hidden_dim} → teacher "
                    f"width {self.teacher_taps.hidden_dim}). Start a new projection "
                    f"instead (do not load the earlier run's projections)."
                )
            layer.set_weights(weights[name])
            loaded.append(name)
        return loaded

    def trains(self, loss_name):
        """Whether `loss_name` has a non-zero weight in this distiller."""
        return self.weights_by_loss[loss_name] != 0.0

    @property
    def metrics(self):
        # Wrapped in Keras' MetricsList so that callbacks monitoring e.g.
        # "val_hidden_loss" (EarlyStopping, ModelCheckpoint) find the metric and
        # know that lower is better, as they do for compiled metrics.
        return [self._metrics_list]

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Build only the optimizer: the models and projections are built already.

        Keras' own symbolic build under `tf.distribute` first averages an input
        batch across replicas, which fails on keras-hub's boolean `padding_mask`.
        """
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    # --------------------------------------------------------------- forward --
    def call(self, inputs, training=False):
        """The student's output: the distiller predicts what the student does."""
        return self.student(inputs, training=training)

    def _check_inputs(self, x):
        if not isinstance(x, dict) or any(k not in x for k in REQUIRED_INPUTS):
            got = sorted(x) if isinstance(x, dict) else type(x).__name__
            raise ValueError(
                f"The distiller needs keras-hub's input dict with keys "
                f"{REQUIRED_INPUTS} (and 'segment_ids' for BERT); got {got}. "
                f"Tokenise with the teacher's preprocessor first, e.g. "
                f"`ds.map(teacher.preprocessor)` or kt.data's loaders."
            )

    def compute_losses(self, teacher_out, student_out, padding_mask):
        """{name: unweighted loss} for every trained (and monitored) loss."""
        result = {}
        if self.trains("embedding"):
            result["embedding"] = losses.embedding_mse(
                student_out["embedding"],
                teacher_out["embedding"],
                self.embedding_projection,
                self._token_mask(padding_mask),
            )
        pairs = self.layer_map.pairs()
        if self.trains("hidden"):
            result["hidden"] = sum(
                losses.hidden_mse(
                    student_out["hidden"][m - 1],
                    teacher_out["hidden"][n - 1],
                    self.hidden_projection,
                    self._token_mask(padding_mask),
                )
                for m, n in pairs
            )
        if self.trains("attention"):
            result["attention"] = sum(
                losses.attention_mse(
                    student_out["attention"][m - 1],
                    teacher_out["attention"][n - 1],
                    padding_mask,
                    masking=self.attention_masking,
                    heads=self.attention_heads,
                )
                for m, n in pairs
            )
        if "logits" in teacher_out and "logits" in student_out:
            loss = losses.prediction_loss(
                student_out["logits"],
                teacher_out["logits"],
                self.temperature,
                self.prediction_reduction,
            )
            # Monitored even when not trained: it needs no learned projection.
            result["prediction"] = (
                loss if self.trains("prediction") else ops.stop_gradient(loss)
            )
        return result

    def _token_mask(self, padding_mask):
        return padding_mask if self.attention_masking == "exact" else None

    def total_loss(self, loss_values):
        """Σ λ_name · L_name over the trained losses (Eq. 11)."""
        return sum(
            self.weights_by_loss[n] * v
            for n, v in loss_values.items()
            if self.trains(n)
        )

    def _fused_norms(self):
        """Inference-mode layer norms as one oneDNN kernel (`taps.fused_norms_pay`),
        except under XLA, where that graph is slow: there, Keras' layer."""
        return False if self.jit_compile else None

    def _needs_teacher_internals(self):
        return any(self.trains(n) for n in ("embedding", "attention", "hidden"))

    def _teacher_forward(self, x):
        """The teacher's taps in inference mode, outside any gradient.

        When the batch carries the teacher's cached logits (`x["teacher_logits"]`,
        from `kt.data.with_teacher_logits`) and no intermediate loss is trained,
        the teacher is not run at all.
        """
        needs_attention = self.trains("attention")
        if TEACHER_LOGITS in x and not self._needs_teacher_internals():
            return {"logits": x[TEACHER_LOGITS]}, needs_attention
        teacher_out = self.teacher_taps(
            x, training=False, attention=needs_attention, fused_norms=self._fused_norms()
        )
        teacher_out = tf.nest.map_structure(
            lambda t: tf.stop_gradient(tf.cast(t, "float32")), teacher_out
        )
        return teacher_out, needs_attention

    # ----------------------------------------------------------- train/test --
    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        self._check_inputs(x)
        teacher_out, needs_attention = self._teacher_forward(x)
        x = {k: v for k, v in x.items() if k != TEACHER_LOGITS}
        with tf.GradientTape() as tape:
            student_out = self.student_taps(
                x, training=True, attention=needs_attention
            )
            loss_values = self.compute_losses(
                teacher_out, student_out, x["padding_mask"]
            )
            total = self.total_loss(loss_values)
            # Keras' TF optimizer sums the replicas' gradients: divide by their
            # number so that N replicas take the same step as one.
            scaled = keras.src.losses.loss.scale_loss_for_distribution(total)
            scaled = self.optimizer.scale_loss(scaled)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return self._update_metrics(total, loss_values, y, student_out)

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        self._check_inputs(x)
        teacher_out, needs_attention = self._teacher_forward(x)
        x = {k: v for k, v in x.items() if k != TEACHER_LOGITS}
        student_out = self.student_taps(
            x, training=False, attention=needs_attention, fused_norms=self._fused_norms()
        )
        loss_values = self.compute_losses(teacher_out, student_out, x["padding_mask"])
        return self._update_metrics(
            self.total_loss(loss_values), loss_values, y, student_out
        )

    def _update_metrics(self, total, loss_values, y, student_out):
        self._trackers["total"].update_state(total)
        logs = {"loss": self._trackers["total"].result()}
        for name, value in loss_values.items():
            self._trackers[name].update_state(value)
            logs[f"{name}_loss"] = self._trackers[name].result()
        if y is not None and "logits" in student_out:
            if student_out["logits"].shape[-1] > 1:
                self._accuracy.update_state(y, student_out["logits"])
                logs["accuracy"] = self._accuracy.result()
        self._metrics_list.logged = tuple(logs)
        if isinstance(tf.distribute.get_strategy(),
                      tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces step outputs across workers with MEAN over axis 0,
            # which a scalar doesn't have: give each value a length-1 axis.
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    # ---------------------------------------------------------------- config --
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "teacher": keras.saving.serialize_keras_object(self.teacher),
                "student": keras.saving.serialize_keras_object(self.student),
                "stage": self.stage,
                "layer_map": self.layer_map.get_config()["strategy"],
                "loss_weights": self.loss_weights_config,
                "temperature": self.temperature,
                "attention_heads": self.attention_heads,
                "attention_masking": self.attention_masking,
                "shared_projection": self.shared_projection,
                "prediction_reduction": self.prediction_reduction,
                "teacher_precision": self.teacher_precision,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("teacher", "student"):
            config[key] = _deserialize(config[key])
        return cls(**config)
