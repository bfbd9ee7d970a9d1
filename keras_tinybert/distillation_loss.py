"""TinyBERT's four loss terms as objects the `Distiller` loops over (§3.1, Eqs. 7–10).

As in Keras' own `keras.distillation` (`DistillationLoss`), a loss is an object that

- names what it reads: `taps`, among ``"embedding"``, ``"hidden"``, ``"attention"``
  and ``"logits"`` (what `kt.Taps` returns), and the learnable projection it uses,
  `projection`: ``"embedding"`` (W_e), ``"hidden"`` (W_h) or None;
- checks that a teacher/student pair can give it
  (`validate_model_compatibility`, called once with the two `kt.Taps`) and that one
  batch's taps hold what it reads (`validate_outputs`);
- computes its value (`compute_loss`) from the pure functions of `losses.py`;
- has a `get_config`, so that a distiller holding it can be saved and rebuilt.

| class            | paper                     | taps          | projection |
| ---------------- | ------------------------- | ------------- | ---------- |
| `EmbeddingLoss`  | L_embd = MSE(E^S W_e, E^T)  (Eq. 9) | embedding | W_e |
| `HiddenLoss`     | L_hidn = MSE(H^S W_h, H^T)  (Eq. 8) | hidden    | W_h |
| `AttentionLoss`  | L_attn = (1/h) Σ MSE(A^S, A^T) (Eq. 7) | attention | none |
| `PredictionLoss` | L_pred = CE(z^T/t, z^S/t)   (Eq. 10) | logits    | none |

A stage is a list of ``(loss, weight)`` pairs (`tinybert_losses` builds the four);
a user adds their own loss, e.g. a MiniLM-style relation loss, by subclassing
`DistillationLoss` and passing it to ``kt.Distiller(..., extra_losses=[(loss, w)])``.
"""

import keras

from keras_tinybert import losses

TAP_NAMES = ("embedding", "hidden", "attention", "logits")
PROJECTIONS = ("embedding", "hidden")  # W_e, W_h: the Distiller owns them


def check_choice(name, value, choices):
    """A clear error when option `name` is not one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}.")


def _model_name(taps):
    return type(getattr(taps, "model", taps)).__name__


class DistillationLoss:
    """One distillation term between the teacher's and the student's taps.

    Subclasses set `name` (logged as ``<name>_loss``), `taps` and `projection`, and
    implement `compute_loss`. The `Distiller` calls

        loss.compute_loss(teacher_outputs, student_outputs, padding_mask=...,
                          layer_pairs=..., projection=...)

    with the two models' taps (dicts as `kt.Taps` returns them; the teacher's in
    float32 and outside the gradient), the batch's [B, T] padding mask, the layer
    map as [(m, n)] pairs (student block m ↔ teacher block n, 1-based) and the
    projection layer named by `projection` (None when the loss names none). The
    value is an unweighted float32 scalar; the stage's weight is applied outside.

    Unlike Keras' `DistillationLoss`, `validate_model_compatibility` receives the
    two `kt.Taps` (which know the models' heads, layers and logits), not the models.
    """

    name = None
    taps = ()
    projection = None

    def __init__(self):
        self._check_declaration()

    def _check_declaration(self):
        cls = type(self).__name__
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"{cls} needs a `name` (its metric is `<name>_loss`).")
        unknown = [tap for tap in self.taps if tap not in TAP_NAMES]
        if not self.taps or unknown:
            raise ValueError(
                f"{cls}.taps must name what it reads among {TAP_NAMES}; got "
                f"{tuple(self.taps)}."
            )
        if self.projection is not None and self.projection not in PROJECTIONS:
            raise ValueError(
                f"{cls}.projection must be None or one of {PROJECTIONS} (W_e, W_h), "
                f"got {self.projection!r}."
            )

    def unsupported(self, teacher, student):
        """Why this pair's *model families* cannot give the loss at all, or None.

        Only attention can be missing by design: a family whose blocks have no
        self-attention (F-Net mixes tokens by a Fourier transform) has no scores.
        A stage turns such a loss off (the `Distiller` logs why); asking for it
        explicitly is an error (`validate_model_compatibility`).
        """
        if "attention" not in self.taps:
            return None
        lacking = [(who, t) for who, t in (("teacher", teacher), ("student", student))
                   if not t.has_attention]
        if not lacking:
            return None
        names = " and the ".join(f"{who} ({_model_name(t)})" for who, t in lacking)
        verb = "has" if len(lacking) == 1 else "have"
        return (f"the {names} {verb} no attention scores (blocks without "
                f"self-attention, like F-Net's Fourier mixing)")

    def validate_model_compatibility(self, teacher, student):
        """Raise a clear ValueError when the pair (two `kt.Taps`) cannot give it."""
        reason = self.unsupported(teacher, student)
        if reason:
            raise ValueError(
                f"The {self.name} loss reads attention scores, but {reason}. "
                f"Leave {self.name!r} out of loss_weights (the stage then turns "
                f"the loss off) or set it to 0."
            )
        if "logits" in self.taps:
            who = [n for n, t in (("teacher", teacher), ("student", student))
                   if not t.has_logits]
            if who:
                raise ValueError(
                    f"The {self.name} loss needs logits, but the {' and '.join(who)}"
                    f" {'is a bare backbone' if len(who) == 1 else 'are bare backbones'}"
                    f". Use task models (e.g. BertTextClassifier), pass "
                    f"`head=(teacher_head, student_head)` for a custom head, or set "
                    f"loss_weights={{{self.name!r}: 0}}."
                )

    def validate_outputs(self, teacher_outputs, student_outputs):
        """Each tap this loss reads is in both models' outputs (checked when the
        step is traced: Python only, no cost per step)."""
        for who, outputs in (("teacher", teacher_outputs), ("student", student_outputs)):
            for tap in self.taps:
                if tap not in outputs or (tap == "attention" and not outputs[tap]):
                    raise ValueError(
                        f"The {self.name} loss reads {tap!r}, which the {who}'s taps "
                        f"did not return (they have {sorted(outputs)})."
                    )

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        """The unweighted loss (a float32 scalar); see the class docstring."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute_loss.")

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({options})"


class _StateMSE(DistillationLoss):
    """An MSE on token states (embedding or block outputs). Padded tokens count
    under ``masking="paper"`` (the paper's code averages over every position)
    and are left out of the mean under ``"exact"``."""

    def __init__(self, masking="paper"):
        super().__init__()
        check_choice("masking", masking, losses.ATTENTION_MASKING)
        self.masking = masking

    def _token_mask(self, padding_mask):
        return padding_mask if self.masking == "exact" else None

    def get_config(self):
        return {"masking": self.masking}


@keras.saving.register_keras_serializable(package="keras_tinybert")
class EmbeddingLoss(_StateMSE):
    """L_embd = MSE(E^S W_e, E^T) on the embedding outputs H_0 (Eq. 9).

    Args:
        masking: ``"paper"`` (every position, as the paper's code) or ``"exact"``
            (padded tokens left out of the mean).
    """

    name = "embedding"
    taps = ("embedding",)
    projection = "embedding"

    def compute_loss(self, teacher_outputs, student_outputs, padding_mask=None,
                     projection=None, **kwargs):
        return losses.embedding_mse(
            student_outputs["embedding"],
            teacher_outputs["embedding"],
            projection,
            self._token_mask(padding_mask),
        )


@keras.saving.register_keras_serializable(package="keras_tinybert")
class HiddenLoss(_StateMSE):
    """L_hidn = Σ_m MSE(H^S_m W_h, H^T_g(m)) over the mapped blocks (Eq. 8).

    Args:
        masking: as `EmbeddingLoss`.
    """

    name = "hidden"
    taps = ("hidden",)
    projection = "hidden"

    def compute_loss(self, teacher_outputs, student_outputs, padding_mask=None,
                     layer_pairs=(), projection=None, **kwargs):
        mask = self._token_mask(padding_mask)
        return sum(
            losses.hidden_mse(
                student_outputs["hidden"][m - 1],
                teacher_outputs["hidden"][n - 1],
                projection,
                mask,
            )
            for m, n in layer_pairs
        )


@keras.saving.register_keras_serializable(package="keras_tinybert")
class AttentionLoss(DistillationLoss):
    """L_attn = Σ_m (1/h) Σ_i MSE(A^S_m,i, A^T_g(m),i) on pre-softmax scores (Eq. 7).

    Args:
        masking: ``"paper"`` (padded keys zeroed, as the paper's code) or
            ``"exact"`` (only real query/key pairs count); see
            `losses.attention_mse`.
        heads: ``"same"`` (head i ↔ head i, the paper; equal head counts) or
            ``"mean"`` (scores averaged over heads first).
    """

    name = "attention"
    taps = ("attention",)

    def __init__(self, masking="paper", heads="same"):
        super().__init__()
        check_choice("masking", masking, losses.ATTENTION_MASKING)
        check_choice("heads", heads, losses.HEAD_MODES)
        self.masking = masking
        self.heads = heads

    def validate_model_compatibility(self, teacher, student):
        super().validate_model_compatibility(teacher, student)
        t, s = teacher.num_heads, student.num_heads
        if t != s and self.heads == "same":
            raise ValueError(
                f"Head-count mismatch: the teacher has {t} attention heads and the "
                f"student {s}, so the attention loss cannot compare head i with "
                f"head i. Build the student with num_heads={t}, or pass "
                f"attention_heads='mean' to compare the head-averaged scores."
            )

    def compute_loss(self, teacher_outputs, student_outputs, padding_mask=None,
                     layer_pairs=(), **kwargs):
        return sum(
            losses.attention_mse(
                student_outputs["attention"][m - 1],
                teacher_outputs["attention"][n - 1],
                padding_mask,
                masking=self.masking,
                heads=self.heads,
            )
            for m, n in layer_pairs
        )

    def get_config(self):
        return {"masking": self.masking, "heads": self.heads}


@keras.saving.register_keras_serializable(package="keras_tinybert")
class PredictionLoss(DistillationLoss):
    """L_pred = −Σ_c softmax(z^T/t)_c · log_softmax(z^S/t)_c (Eq. 10); MSE for a
    regression task's single output (as the paper's code does for STS-B).

    Args:
        temperature: t (the paper uses 1).
        reduction: ``"batch"`` (Eq. 10: sum over classes, mean over the batch) or
            ``"elements"`` (the paper's code: mean over classes too).
    """

    name = "prediction"
    taps = ("logits",)

    def __init__(self, temperature=1.0, reduction="batch"):
        super().__init__()
        if float(temperature) <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        check_choice("reduction", reduction, losses.PREDICTION_REDUCTIONS)
        self.temperature = float(temperature)
        self.reduction = reduction

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        return losses.prediction_loss(
            student_outputs["logits"],
            teacher_outputs["logits"],
            self.temperature,
            self.reduction,
        )

    def get_config(self):
        return {"temperature": self.temperature, "reduction": self.reduction}


def tinybert_losses(temperature=1.0, attention_heads="same", attention_masking="paper",
                    prediction_reduction="batch"):
    """The four TinyBERT terms by name, in the order the Distiller sums them."""
    return {
        "embedding": EmbeddingLoss(attention_masking),
        "hidden": HiddenLoss(attention_masking),
        "attention": AttentionLoss(attention_masking, attention_heads),
        "prediction": PredictionLoss(temperature, prediction_reduction),
    }
