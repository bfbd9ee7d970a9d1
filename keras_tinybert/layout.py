"""The example layout every part of keras_tinybert shares: which keys a batch has.

Raw examples, before tokenisation, are tuples `(texts, label[, teacher_logits])`:
`texts` a tuple of one string (single sentences) or two (pairs), `label` an int64 id
(float32 for regression, -1 for an unlabelled test split) and, for the prediction
stage, the teacher's cached logits (`kt.data.with_teacher_logits`).

A batch is `(x, y)`. `x` is the dict a keras-hub model takes — the keys its
preprocessor produces (BERT: `token_ids`, `padding_mask`, `segment_ids`; RoBERTa,
DistilBERT and most others: `token_ids`, `padding_mask`) — optionally with the
teacher's cached logits riding along under `TEACHER_LOGITS`. `y` is the label
(absent for the plain text of general distillation: batches are `x` alone).

`data/` builds batches in this layout, the `Distiller` reads it and `export/` serves
it; the names live here and nowhere else.
"""

# The packed per-token inputs keras-hub preprocessors can produce.
TOKEN_IDS = "token_ids"
PADDING_MASK = "padding_mask"  # True at real tokens
SEGMENT_IDS = "segment_ids"  # BERT-style models only
# ... in the order signatures list them. A model takes the subset its preprocessor makes.
TOKEN_KEYS = (TOKEN_IDS, PADDING_MASK, SEGMENT_IDS)
# What every model needs: the ids and the mask of real tokens.
REQUIRED_KEYS = (TOKEN_IDS, PADDING_MASK)
# The teacher's logits, cached once for the prediction stage: [batch, classes].
TEACHER_LOGITS = "teacher_logits"


def token_inputs(x):
    """`x` without the extra keys (teacher logits): what the models are called on."""
    return {key: value for key, value in x.items() if key != TEACHER_LOGITS}


def cached_teacher_logits(x):
    """The teacher's cached logits in `x`, or None."""
    return x.get(TEACHER_LOGITS) if isinstance(x, dict) else None
