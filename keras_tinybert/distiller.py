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

``loss_weights`` re-weights them; a loss whose weight is 0 is not trained. Each
term is an object (`distillation_loss.py`) that names the taps it reads and the
projection it uses and checks the teacher/student pair; a stage is a list of
``(loss, weight)`` pairs and the distiller loops over it, so a user's own loss joins
through ``extra_losses`` without a change here. The learnable projections W_e
(embeddings) and W_h (hidden states) that map the student's width to the teacher's
belong to the distiller, never to the student.
"""

import json
import logging

import keras
import tensorflow as tf
from keras import ops
from keras.src.trainers.compile_utils import MetricsList

from keras_tinybert import losses
from keras_tinybert.distillation_loss import (
    DistillationLoss,
    check_choice,
    tinybert_losses,
)
from keras_tinybert.layer_map import layer_map as make_layer_map
from keras_tinybert.layout import (
    PADDING_MASK,
    REQUIRED_KEYS,
    TEACHER_LOGITS,
    token_inputs,
)
from keras_tinybert.taps import Taps, vocabulary_size

logger = logging.getLogger(__name__)

LOSS_NAMES = ("embedding", "attention", "hidden", "prediction")
STAGES = {
    "general": ("embedding", "attention", "hidden"),
    "intermediate": ("embedding", "attention", "hidden"),
    "prediction": ("prediction",),
    "joint": LOSS_NAMES,
}
# Logged even when the stage does not train them, whenever both models give their
# taps: they need no learned projection.
MONITORED = ("prediction",)


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
    t_size, s_size = vocabulary_size(teacher), vocabulary_size(student)
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
    return weights


def _head_pair(head):
    """(teacher_head, student_head) from the Distiller's `head` argument."""
    if head is None:
        return None, None
    if (isinstance(head, (tuple, list)) and len(head) == 2
            and all(h is None or callable(h) for h in head)):
        return tuple(head)
    raise ValueError(
        f"head must be a pair (teacher_head, student_head), each None (the "
        f"model's own head) or a callable head(sequence_output, training) -> "
        f"logits; got {head!r}."
    )


def _extra_losses(extra_losses):
    """[(loss, weight)] from `extra_losses` (a bare loss object means weight 1)."""
    pairs = []
    for item in extra_losses or ():
        loss, weight = item if isinstance(item, (tuple, list)) else (item, 1.0)
        if not isinstance(loss, DistillationLoss):
            raise ValueError(
                f"extra_losses takes kt.distillation_loss.DistillationLoss objects "
                f"(or (loss, weight) pairs); got {loss!r}. Subclass "
                f"DistillationLoss: set `name`, `taps`, and write `compute_loss`."
            )
        taken = set(LOSS_NAMES) | {"total"} | {other.name for other, _ in pairs}
        if loss.name in taken:
            raise ValueError(
                f"Extra loss name {loss.name!r} is taken (TinyBERT's losses are "
                f"{LOSS_NAMES}; names must be unique): give {type(loss).__name__} "
                f"another `name`."
            )
        pairs.append((loss, float(weight)))
    return pairs


def _taps(model, head, logits):
    """`Taps` with the logits path when `logits` is True (a trained loss needs it;
    Taps raises when it cannot read the head), none when False, and when
    ``"monitor"`` only if Taps can read the head (the monitor is then off)."""
    if logits != "monitor":
        return Taps(model, head=head, logits=logits)
    try:
        return Taps(model, head=head, logits=True)
    except ValueError as error:  # a head Taps cannot read: monitor off
        logger.info("prediction_loss not monitored: %s", error)
        return Taps(model, head=head, logits=False)


TEACHER_PRECISIONS = ("float32", "bfloat16")
BACKENDS = ("tensorflow", "jax")


def check_backend():
    """The Keras backend must be one the Distiller is tested on."""
    backend = keras.backend.backend()
    if backend not in BACKENDS:
        raise ValueError(
            f"kt.Distiller runs on the Keras backends {BACKENDS}; this process "
            f"runs {backend!r}. Set KERAS_BACKEND=jax or KERAS_BACKEND=tensorflow "
            f"before importing keras (or in ~/.keras/keras.json)."
        )


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
        head: for task models whose head `kt.Taps` cannot read: a pair
            ``(teacher_head, student_head)``, each None (the model's own head) or
            a callable ``head(sequence_output, training) -> logits`` applied to the
            last block's output [B, T, d]. The student's head must use the
            student's own layers (only those are trained); with
            ``teacher_precision="bfloat16"`` a given teacher head runs as written,
            on the teacher's float32 layers. Not part of `get_config`: pass it
            again when rebuilding the distiller.
        extra_losses: more terms beside TinyBERT's: a list of
            `kt.distillation_loss.DistillationLoss` objects or ``(loss, weight)``
            pairs (weight 1 by default; weight 0 logs the loss without training
            it). Each is logged as ``<name>_loss`` and added to ``loss``.

    The logits path is built only where it is used: the stages that train the
    prediction loss, and the others when both models are task models whose head
    `kt.Taps` reads (there ``prediction_loss`` is logged as a monitor). On a model
    family without attention (F-Net) the stage turns the attention loss off and
    logs one line saying why; an attention weight given in ``loss_weights`` for
    such a model is an error.

    `fit` logs ``loss`` and ``<name>_loss`` for every trained loss, plus
    ``prediction_loss`` as a monitor whenever both models have logits, and
    ``accuracy`` of the student when the data carries labels.

    Backends: TensorFlow runs the distiller's own `train_step` (fused kernels,
    `tf.distribute`); JAX runs Keras' stateless steps, which call
    `compute_loss` (the same losses, metrics and `History` keys; `kt.Taps` run
    `keras.ops` there). Only the weights a trained loss reaches are trained
    (`trainable_variables`), so both give the same weights. Other backends
    (torch) are refused at construction: they are not tested.
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
        head=None,
        extra_losses=None,
        name="tinybert_distiller",
        **kwargs,
    ):
        check_backend()
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
        tinybert = tinybert_losses(
            self.temperature, attention_heads, attention_masking, prediction_reduction
        )
        self.extra_losses = _extra_losses(extra_losses)

        self.teacher = teacher
        self.student = student
        self.teacher.trainable = False
        self.teacher_precision = teacher_precision
        self._build_taps(_teacher_in(teacher, teacher_precision), head, tinybert)
        check_vocabularies(teacher, student)
        self.layer_map = make_layer_map(
            layer_map, self.student_taps.num_layers, self.teacher_taps.num_layers
        )
        self.stage_losses = self._stage_losses(tinybert)
        self._build_projections()
        self._trackers = {
            n: keras.metrics.Mean(name="loss" if n == "total" else f"{n}_loss")
            for n in ("total",) + LOSS_NAMES + tuple(l.name for l, _ in self.extra_losses)
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
        check_choice("attention_heads", self.attention_heads, losses.HEAD_MODES)
        check_choice("attention_masking", self.attention_masking,
                     losses.ATTENTION_MASKING)
        check_choice("prediction_reduction", self.prediction_reduction,
                     losses.PREDICTION_REDUCTIONS)

    def _build_taps(self, teacher, head, tinybert):
        """The teacher's and student's `Taps`, with the logits path only where a
        trained loss reads logits, or for the prediction monitor."""
        teacher_head, student_head = _head_pair(head)
        trained = [tinybert[n] for n in LOSS_NAMES if self.weights_by_loss[n]]
        trained += [loss for loss, weight in self.extra_losses if weight]
        if any("logits" in loss.taps for loss in trained):
            self.student_taps = Taps(self.student, head=student_head)
            self.teacher_taps = Taps(teacher, head=teacher_head)
            return
        self.student_taps = _taps(self.student, student_head, "monitor")
        self.teacher_taps = _taps(
            teacher, teacher_head, "monitor" if self.student_taps.has_logits else False
        )

    def _stage_losses(self, tinybert):
        """[(loss, weight)]: the stage's trained TinyBERT losses, the monitors and
        the extra losses, each checked against the two models' taps.

        A stage loss the model family cannot give (attention in F-Net) is turned
        off with one logged line, unless its weight was given explicitly.
        """
        pair = (self.teacher_taps, self.student_taps)
        stage = []
        for name in ("embedding", "hidden", "attention", "prediction"):
            loss, weight = tinybert[name], self.weights_by_loss[name]
            if not weight:
                if name in MONITORED and all(t.has_logits for t in pair):
                    stage.append((loss, 0.0))
                continue
            reason = loss.unsupported(*pair)
            if reason and name not in self.loss_weights_config:
                logger.warning("The %s loss is off: %s.", name, reason)
                self.weights_by_loss[name] = 0.0
                continue
            loss.validate_model_compatibility(*pair)
            stage.append((loss, weight))
        for loss, weight in self.extra_losses:
            loss.validate_model_compatibility(*pair)
            stage.append((loss, weight))
        if not any(weight for _, weight in stage):
            weights = dict(self.weights_by_loss)
            weights.update((loss.name, w) for loss, w in self.extra_losses)
            raise ValueError(f"All loss weights are 0 ({weights}): nothing to train.")
        return stage

    def _build_projections(self):
        """W_e and W_h, Dense maps from the student's width to the teacher's, for
        the trained losses that name them (`DistillationLoss.projection`)."""
        d_s, d_t = self.student_taps.hidden_dim, self.teacher_taps.hidden_dim
        used = {loss.projection for loss, weight in self.stage_losses if weight}
        self.embedding_projection = self.hidden_projection = None
        if "hidden" in used or (self.shared_projection and "embedding" in used):
            self.hidden_projection = keras.layers.Dense(d_t, name="hidden_projection")
            self.hidden_projection.build((None, None, d_s))
        if "embedding" in used:
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
        return any(loss.name == loss_name and weight
                   for loss, weight in self.stage_losses)

    def _reads(self, tap):
        """Whether a loss of the stage (trained or monitored) reads `tap`."""
        return any(tap in loss.taps for loss, _ in self.stage_losses)

    @property
    def trainable_variables(self):
        """The weights the stage trains: the projections and the student's
        weights that a trained loss reaches (`Taps.layers_read`); without a
        trained loss on logits, the student's pooler and head are left out, so
        that no optimizer (weight decay included) touches them, on any backend
        (Keras' JAX step reads this list; TensorFlow's `train_step` too)."""
        variables = super().trainable_variables
        if not hasattr(self, "stage_losses"):  # during __init__
            return variables
        logits = any("logits" in loss.taps for loss, w in self.stage_losses if w)
        read = {id(v) for layer in self.student_taps.layers_read(logits)
                for v in layer.trainable_variables}
        student = {id(v) for v in self.student.trainable_variables}
        return [v for v in variables if id(v) not in student or id(v) in read]

    @property
    def trainable_weights(self):
        return self.trainable_variables

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
        return self.student(token_inputs(inputs), training=training)

    # The input dict is checked before any step runs (Keras' own JAX step would call
    # the student first, whose error names no fix).
    def fit(self, x=None, *args, **kwargs):
        self._check_inputs(_first_inputs(x))
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        self._check_inputs(_first_inputs(x))
        return super().evaluate(x, *args, **kwargs)

    def _check_inputs(self, x):
        """The batch (or its `tf.data` element spec) is keras-hub's input dict."""
        if x is None:
            return
        if not isinstance(x, dict) or any(k not in x for k in REQUIRED_KEYS):
            got = sorted(x) if isinstance(x, dict) else type(x).__name__
            raise ValueError(
                f"The distiller needs keras-hub's input dict with keys "
                f"{REQUIRED_KEYS} (and 'segment_ids' for BERT); got {got}. "
                f"Tokenise with the teacher's preprocessor first, e.g. "
                f"`ds.map(teacher.preprocessor)` or kt.data's loaders."
            )

    def compute_losses(self, teacher_out, student_out, padding_mask):
        """{name: unweighted loss} for every loss of the stage, trained or
        monitored (a monitor's value is outside the gradient)."""
        projections = {"embedding": self.embedding_projection,
                       "hidden": self.hidden_projection}
        result = {}
        for loss, weight in self.stage_losses:
            loss.validate_outputs(teacher_out, student_out)
            value = loss.compute_loss(
                teacher_out,
                student_out,
                padding_mask=padding_mask,
                layer_pairs=self.layer_map.pairs(),
                projection=projections.get(loss.projection),
            )
            result[loss.name] = value if weight else ops.stop_gradient(value)
        return result

    def total_loss(self, loss_values):
        """Σ λ_name · L_name over the trained losses (Eq. 11)."""
        weights = {loss.name: weight for loss, weight in self.stage_losses}
        return sum(
            weights[n] * v for n, v in loss_values.items() if weights.get(n)
        )

    def _fused_norms(self):
        """Inference-mode layer norms as one oneDNN kernel (`taps.fused_norms_pay`),
        except under XLA, where that graph is slow, and off TensorFlow, which
        has no such kernel: there, Keras' layer."""
        if self.jit_compile or keras.backend.backend() != "tensorflow":
            return False
        return None

    def _teacher_forward(self, x):
        """The teacher's taps in inference mode, outside any gradient, and
        whether the stage reads attention scores.

        When the batch carries the teacher's cached logits (`x["teacher_logits"]`,
        from `kt.data.with_teacher_logits`) and the stage reads nothing but
        logits, the teacher is not run at all.
        """
        needs_attention = self._reads("attention")
        if TEACHER_LOGITS in x and not any(
            self._reads(tap) for tap in ("embedding", "hidden", "attention")
        ):
            return {"logits": x[TEACHER_LOGITS]}, needs_attention
        teacher_out = self.teacher_taps(
            token_inputs(x), training=False, attention=needs_attention,
            fused_norms=self._fused_norms(),
        )
        teacher_out = keras.tree.map_structure(
            lambda t: ops.stop_gradient(ops.cast(t, "float32")), teacher_out
        )
        return teacher_out, needs_attention

    # ----------------------------------------------------------- train/test --
    # TensorFlow runs its own `train_step`/`test_step` (the teacher outside the
    # tape, the fused kernels, `tf.distribute`'s loss scaling). Other backends
    # (JAX) run Keras' stateless steps, which call `compute_loss`: the same loss
    # path, backend-agnostic as long as the `Taps` are.
    def train_step(self, *args):
        if keras.backend.backend() != "tensorflow":
            return super().train_step(*args)
        (data,) = args
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        self._check_inputs(x)
        teacher_out, needs_attention = self._teacher_forward(x)
        with tf.GradientTape() as tape:
            total, loss_values, student_out = self._student_losses(
                x, teacher_out, needs_attention, training=True
            )
            # Keras' TF optimizer sums the replicas' gradients: divide by their
            # number so that N replicas take the same step as one.
            scaled = keras.src.losses.loss.scale_loss_for_distribution(total)
            scaled = self.optimizer.scale_loss(scaled)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return self._tf_logs(self._update_metrics(total, loss_values, y, student_out))

    def test_step(self, *args):
        if keras.backend.backend() != "tensorflow":
            return super().test_step(*args)
        (data,) = args
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        self.compute_loss(x, y, training=False)
        return self._tf_logs(self._metrics_list.result())

    _JAX_STATE = ("trainable_variables", "non_trainable_variables",
                  "optimizer_variables", "metrics_variables")

    def _get_jax_state(self, **parts):
        """Keras' JAX trainer empties the variables while it trains (it passes their
        values through its stateless steps) and puts them back after. When the first
        step fails (a bad input batch), it has nothing to put back, and the student
        and the *teacher* are left without weights. So the state just taken is the
        one to restore until a step returns a newer one."""
        state = super()._get_jax_state(**parts)
        if parts.get("purge_model_variables"):
            taken = [name for name in self._JAX_STATE if parts.get(name)]
            self._jax_state = dict(zip(taken, state))
            self._jax_state_synced = False
        return state

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        """Σ λ·L of one batch (Eq. 11), with the metrics updated: the loss path of
        Keras' own steps (every backend but TensorFlow's `train_step`). `y_pred`,
        the student's plain forward pass, is not used: the losses read taps."""
        self._check_inputs(x)
        teacher_out, needs_attention = self._teacher_forward(x)
        total, loss_values, student_out = self._student_losses(
            x, teacher_out, needs_attention, training
        )
        self._update_metrics(total, loss_values, y, student_out)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """The logs of the step (updated by `compute_loss`)."""
        return self._metrics_list.result()

    def _student_losses(self, x, teacher_out, needs_attention, training):
        """(total, {name: value}, student taps): the student's taps of the batch
        and the stage's losses against the teacher's taps."""
        x = token_inputs(x)
        student_out = self.student_taps(
            x, training=training, attention=needs_attention,
            fused_norms=self._fused_norms(),
        )
        loss_values = self.compute_losses(teacher_out, student_out, x[PADDING_MASK])
        return self.total_loss(loss_values), loss_values, student_out

    def _update_metrics(self, total, loss_values, y, student_out):
        """Update the trackers with one batch; the step's logs."""
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
        return logs

    @staticmethod
    def _tf_logs(logs):
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
                "extra_losses": [
                    [keras.saving.serialize_keras_object(loss), weight]
                    for loss, weight in self.extra_losses
                ],
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("teacher", "student"):
            config[key] = _deserialize(config[key])
        config["extra_losses"] = [
            (keras.saving.deserialize_keras_object(loss), weight)
            for loss, weight in config.get("extra_losses") or ()
        ]
        return cls(**config)


def _first_inputs(x):
    """What `fit`/`evaluate` will feed as inputs, known before any step runs: a
    dataset's element spec or the arrays' dict (None when it cannot be known
    without reading data, e.g. a generator)."""
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        return spec[0] if isinstance(spec, tuple) else spec
    if isinstance(x, (dict, list, str)) or hasattr(x, "shape"):  # arrays, tensors: checked
        return x
    return None
