"""TinyBERT's layer losses (§3.1, Eqs. 7–10) as pure functions on tensors.

Each returns a float32 scalar for one mapped layer; the `Distiller` sums them over
the layer map and weights them. Inputs may be bfloat16/float16 (mixed precision): the
arithmetic is done in float32.

- `attention_mse`  L_attn = (1/h) Σ_i MSE(A_i^S, A_i^T) on pre-softmax scores (Eq. 7)
- `hidden_mse`     L_hidn = MSE(H^S W_h, H^T)                                  (Eq. 8)
- `embedding_mse`  L_embd = MSE(E^S W_e, E^T)                                  (Eq. 9)
- `soft_cross_entropy`  L_pred = CE(softmax(z^T/t), log_softmax(z^S/t))        (Eq. 10)
"""

from keras import ops

ATTENTION_MASKING = ("paper", "exact")
HEAD_MODES = ("same", "mean")
PREDICTION_REDUCTIONS = ("batch", "elements")

# The paper's code adds −10000 to padded keys' scores and then zeroes every entry
# ≤ −100: a padded key's score becomes 0 in both models, and so does any real score
# below −100.
_PAPER_ZERO_BELOW = -1e2


def _f32(x):
    return ops.cast(x, "float32")


def hidden_mse(student, teacher, projection=None, padding_mask=None):
    """MSE(H^S W, H^T) over batch·T·d (Eq. 8).

    Args:
        student: [B, T, d_S] student states.
        teacher: [B, T, d_T] teacher states.
        projection: callable mapping d_S → d_T (the learnable W_h), or None when
            the widths already agree.
        padding_mask: optional [B, T]; when given, padded positions are left out
            of the mean (the paper's code includes them).
    """
    if projection is not None:
        student = projection(student)
    diff = ops.square(_f32(student) - _f32(teacher))
    if padding_mask is None:
        return ops.mean(diff)
    mask = ops.expand_dims(_f32(padding_mask), -1)
    denom = ops.sum(mask) * ops.cast(ops.shape(diff)[-1], "float32")
    return ops.sum(diff * mask) / ops.maximum(denom, 1.0)


def embedding_mse(student, teacher, projection=None, padding_mask=None):
    """MSE(E^S W_e, E^T) over batch·T·d (Eq. 9); see `hidden_mse`."""
    return hidden_mse(student, teacher, projection, padding_mask)


def attention_mse(student, teacher, padding_mask, masking="paper", heads="same"):
    """MSE between pre-softmax attention scores, averaged over heads (Eq. 7).

    Args:
        student, teacher: [B, H, T, T] scores QKᵀ/√d_head (query axis 2, key 3).
        padding_mask: [B, T], 1 for real tokens.
        masking: ``"paper"`` — as the paper's code: scores of padded keys (and any
            score ≤ −100) are set to 0 in both models, and the mean runs over all
            B·H·T·T entries, padded query rows included. ``"exact"`` — only
            entries whose query and key are both real tokens count.
        heads: ``"same"`` compares head i with head i (needs equal head counts);
            ``"mean"`` first averages the scores over heads on each side, for
            models with different head counts.
    """
    student, teacher = _f32(student), _f32(teacher)
    if heads == "mean":
        student = ops.mean(student, axis=1, keepdims=True)
        teacher = ops.mean(teacher, axis=1, keepdims=True)
    elif heads != "same":
        raise ValueError(f"heads must be one of {HEAD_MODES}, got {heads!r}.")
    valid = _f32(padding_mask)
    key_valid = valid[:, None, None, :]
    if masking == "paper":
        student = ops.where(
            (key_valid > 0) & (student > _PAPER_ZERO_BELOW), student, 0.0
        )
        teacher = ops.where(
            (key_valid > 0) & (teacher > _PAPER_ZERO_BELOW), teacher, 0.0
        )
        return ops.mean(ops.square(student - teacher))
    if masking == "exact":
        pair_valid = valid[:, None, :, None] * key_valid
        diff = ops.square(student - teacher) * pair_valid
        count = ops.sum(pair_valid) * ops.cast(ops.shape(student)[1], "float32")
        return ops.sum(diff) / ops.maximum(count, 1.0)
    raise ValueError(
        f"masking must be one of {ATTENTION_MASKING}, got {masking!r}."
    )


def soft_cross_entropy(student_logits, teacher_logits, temperature=1.0,
                       reduction="batch"):
    """−Σ_c softmax(z^T/t)_c · log_softmax(z^S/t)_c (Eq. 10).

    Args:
        reduction: ``"batch"`` (default, the paper's equation) sums over classes
            and averages over the batch; ``"elements"`` averages over batch and
            classes, as the paper's code does (``.mean()``), i.e. divides by C too.
    """
    t = float(temperature)
    if t <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    targets = ops.softmax(_f32(teacher_logits) / t, axis=-1)
    log_probs = ops.log_softmax(_f32(student_logits) / t, axis=-1)
    per_class = -targets * log_probs
    if reduction == "batch":
        return ops.mean(ops.sum(per_class, axis=-1))
    if reduction == "elements":
        return ops.mean(per_class)
    raise ValueError(
        f"reduction must be one of {PREDICTION_REDUCTIONS}, got {reduction!r}."
    )


def prediction_loss(student_logits, teacher_logits, temperature=1.0,
                    reduction="batch"):
    """L_pred: soft cross-entropy for classifiers, MSE for regression (1 output).

    The paper's code uses MSE on the single output of a regression task (STS-B).
    """
    if student_logits.shape[-1] == 1:
        return ops.mean(ops.square(_f32(student_logits) - _f32(teacher_logits)))
    return soft_cross_entropy(student_logits, teacher_logits, temperature, reduction)
