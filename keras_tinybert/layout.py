"""The example layout every part of keras_tinybert shares: which keys a batch has.

A batch is `(x, y)`. `x` is the dict a keras-hub model takes — the keys its
preprocessor produces (BERT: `token_ids`, `padding_mask`, `segment_ids`; RoBERTa and
most others: `token_ids`, `padding_mask`) — optionally with the teacher's cached
logits riding along under `TEACHER_LOGITS` (the prediction stage computes them once,
`kt.data.with_teacher_logits`). `y` is the label (absent for plain text).

`data/` builds batches in this layout, the `Distiller` reads it and `export/` serves
it; the names live here and nowhere else.
"""

# Keys of packed token inputs that keras-hub preprocessors can produce, in the order
# signatures list them. A model takes the subset its own inputs name.
TOKEN_KEYS = ("token_ids", "padding_mask", "segment_ids")
# What every model needs: the ids and the mask of real tokens.
REQUIRED_KEYS = ("token_ids", "padding_mask")
# The teacher's logits, cached once for the prediction stage: [batch, classes].
TEACHER_LOGITS = "teacher_logits"


def token_inputs(x):
    """`x` without the extra keys (teacher logits): what the models are called on."""
    return {key: value for key, value in x.items() if key != TEACHER_LOGITS}


def cached_teacher_logits(x):
    """The teacher's cached logits in `x`, or None."""
    return x.get(TEACHER_LOGITS) if isinstance(x, dict) else None
