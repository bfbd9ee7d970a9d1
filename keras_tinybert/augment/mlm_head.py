"""A masked-LM head for a pre-trained encoder that ships without one.

The paper's augmentation (§3.1) asks a pre-trained masked LM for candidates. Some
encoders are published without their MLM head (all-MiniLM-L6-v2, a sentence-embedding
model, is one): `fit_mlm_head` puts a new head on such an encoder and trains it on plain
text with BERT's masked-LM objective:

- the task model is keras-hub's masked LM for the encoder's family (`BertMaskedLM`,
  `DistilBertMaskedLM`, ...), whose `MaskedLMHead` is dense → GELU → layer norm, then the
  output projection *tied* to the token embedding, `logits = LN(gelu(h W + b)) Eᵀ + b_v`
  (Press & Wolf 2016): only `W, b`, the layer norm and `b_v` are new;
- its preprocessor masks as BERT does: 15% of the tokens are selected, of which 80% are
  replaced by `[MASK]`, 10% by a random token and 10% left as they are; the loss is the
  cross-entropy of the original token at the selected positions;
- the encoder is frozen (its embedding too, so the tied projection is the pre-trained
  one); `unfreeze_top=N` trains its top N blocks as well.

With the whole encoder frozen, its output does not change during training: it is
computed once, at the masked positions only, and the head is trained on those vectors
(each epoch then costs the head alone; the masking is drawn once, as in BERT's original
static masking, `maskings` times over the corpus). With unfrozen blocks the task model
is trained end to end, the masking drawn anew every epoch.

Quality is reported as masked-token top-1 / top-10 accuracy on held-out text: the share
of selected positions whose original token is the model's first / among its ten first
predictions, over all selected positions (BERT's metric) and over the `[MASK]`ed ones only
(the input the augmenter gives). The result is saved with `save_to_preset`, so
`keras-tinybert augment --mlm DIR` (`load_masked_lm`) loads it.
"""

import json
import math
import pathlib
import random
import re
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

MASK_RATE = 0.15  # BERT: 15% of the tokens are selected ...
MASK_TOKEN_RATE, RANDOM_TOKEN_RATE = 0.8, 0.1  # ... 80% [MASK], 10% random, 10% kept


# ----------------------------------------------------------------------------- model


def masked_lm_classes(backbone):
    """keras-hub's `(MaskedLM, MaskedLMPreprocessor)` classes for `backbone`'s family."""
    import keras_hub

    for name in dir(keras_hub.models):
        cls = getattr(keras_hub.models, name)
        if (isinstance(cls, type) and issubclass(cls, keras_hub.models.MaskedLM)
                and cls is not keras_hub.models.MaskedLM
                and getattr(cls, "backbone_cls", None) is not None
                and isinstance(backbone, cls.backbone_cls)):
            return cls, cls.preprocessor_cls
    raise ValueError(
        f"keras-hub has no masked-LM task for a {type(backbone).__name__}: give a "
        "BERT-family encoder (BERT, DistilBERT, RoBERTa, ALBERT, DeBERTa-v3, ...).")


def new_masked_lm(backbone, tokenizer, sequence_length=128, seed=0):
    """keras-hub's masked LM on `backbone`, with a new (randomly initialised) head.

    The head's output projection is the backbone's token embedding (tied). The
    preprocessor masks as BERT does (15%; 80/10/10) in sequences of `sequence_length`.
    `seed` seeds the head's initialisation (`None`: the global seed is left alone).
    """
    task_cls, preprocessor_cls = masked_lm_classes(backbone)
    preprocessor = preprocessor_cls(
        tokenizer, sequence_length=sequence_length, mask_selection_rate=MASK_RATE,
        mask_selection_length=math.ceil(MASK_RATE * sequence_length) + 1,
        mask_token_rate=MASK_TOKEN_RATE, random_token_rate=RANDOM_TOKEN_RATE)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    masked_lm = task_cls(backbone=backbone, preprocessor=preprocessor)
    mlm_head(masked_lm)  # checks the tie
    return masked_lm


def mlm_head(masked_lm, tied=True):
    """The task's `MaskedLMHead`; with `tied`, an error unless its output projection is
    the encoder's token embedding."""
    import keras_hub

    heads = [layer for layer in masked_lm.layers
             if isinstance(layer, keras_hub.layers.MaskedLMHead)]
    if len(heads) != 1:
        raise ValueError(f"{type(masked_lm).__name__} has {len(heads)} MaskedLMHead layers, "
                         "expected 1.")
    if tied and heads[0].token_embedding is not masked_lm.backbone.token_embedding:
        raise ValueError("The masked-LM head's output projection is not tied to the "
                         "encoder's token embedding.")
    return heads[0]


def set_trainable(masked_lm, unfreeze_top=0):
    """Freeze the encoder except its top `unfreeze_top` blocks; the head trains.

    The token embedding stays frozen in every case: it is the head's (tied) output
    projection, the pre-trained vocabulary the new head learns to map into.
    Returns the trainable weights.
    """
    backbone = masked_lm.backbone
    blocks = list(getattr(backbone, "transformer_layers", []))
    if not 0 <= unfreeze_top <= len(blocks):
        raise ValueError(f"unfreeze_top must be in [0, {len(blocks)}] (the encoder has "
                         f"{len(blocks)} blocks), got {unfreeze_top}.")
    mlm_head(masked_lm).trainable = True  # first: it also reaches the token embedding
    backbone.trainable = True
    for layer in backbone.layers:
        layer.trainable = False
    for block in blocks[len(blocks) - unfreeze_top:]:
        block.trainable = True
    return masked_lm.trainable_weights


def sequence_output(backbone, inputs):
    """The encoder's last hidden states `[batch, length, hidden]` for a dict of inputs
    (the keys it does not take are dropped: DistilBERT has no `segment_ids`)."""
    outputs = backbone({k: v for k, v in inputs.items() if k in backbone.input},
                       training=False)
    return outputs["sequence_output"] if isinstance(outputs, dict) else outputs


# ----------------------------------------------------------------------------- text

_WIKITEXT_AT = re.compile(r" @(.)@ ")  # "1 @,@ 000", "guest @-@ starring"
_WIKITEXT_UNK = re.compile(r" ?<unk>")


def clean_text(text):
    """Undo WikiText's markup: `@-@` → `-` (and `@,@`, `@.@`), `<unk>` removed.

    A WordPiece tokenizer would read `<unk>` as the pieces `<`, `unk`, `>` and `@-@`
    as `@`, `-`, `@`, which a masked LM predicts trivially from their neighbours: left
    in, they would inflate masked-token accuracy.
    """
    return _WIKITEXT_UNK.sub("", _WIKITEXT_AT.sub(r"\1", text)).strip()


def corpus_texts(files):
    """Sentences from text files and GLUE TSVs, in order.

    Each item is a text file, directory of `*.txt` or glob (WikiText's layout is
    understood: `kt.data.sentences`), or a GLUE TSV, given as `TASK:PATH` or as a path
    whose folder names the task (`.../SST-2/train.tsv`, `.../sst2/train.tsv`): all its
    text fields are used.
    """
    from keras_tinybert.data import read_glue_tsv, sentences

    texts = []
    for item in [files] if isinstance(files, (str, pathlib.Path)) else files:
        task, _, path = str(item).rpartition(":") if ".tsv" in str(item) else ("", "", item)
        if str(path).endswith(".tsv"):
            task = task or pathlib.Path(path).parent.name
            try:
                table = read_glue_tsv(path, task)
            except ValueError as error:
                raise ValueError(f"{item}: {error} Name the GLUE task as TASK:PATH, "
                                 "e.g. sst2:glue/SST-2/train.tsv.") from error
            found = [t for field in table.texts() for t in field]
        else:
            found = [s.decode("utf-8") for s in sentences(path).as_numpy_iterator()]
        texts += [t for t in map(clean_text, found) if t]
    if not texts:
        raise ValueError(f"No text in {files}.")
    return texts


def _length_batches(texts, batch_size):
    """`texts` sorted by length, in batches: little padding once each batch is trimmed."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    return [[texts[i] for i in order[s : s + batch_size]]
            for s in range(0, len(texts), batch_size)]


def masked_batches(preprocessor, texts, batch_size=32, seed=0):
    """`(x, y, sample_weight)` batches of masked `texts`, a shuffled `tf.data.Dataset`
    whose masking (`preprocessor`'s, in TensorFlow) is drawn anew on every pass."""
    batches = _length_batches(texts, batch_size)
    ds = tf.data.Dataset.from_tensor_slices(tf.ragged.constant(batches))
    ds = ds.shuffle(len(batches), seed=seed, reshuffle_each_iteration=True)
    return ds.map(lambda t: _trim(*preprocessor(t))).prefetch(2)


def fixed_masked_batches(preprocessor, texts, batch_size=32, seed=0):
    """The same batches as NumPy arrays, masked once, reproducibly for a `seed`.

    keras-hub's preprocessor masks in Python outside a graph (each token selected with
    probability 15%, then 80/10/10) with Python's `random`, seeded here: the same
    seed gives the same masks in any process (its TensorFlow path does not promise that),
    whatever the order of `texts`.
    """
    state = random.getstate()
    random.seed(seed)
    try:
        out = []
        for batch in _length_batches(sorted(texts), batch_size):
            x, y, weights = _trim(*preprocessor(batch))
            out.append(({k: np.asarray(v) for k, v in x.items()}, np.asarray(y),
                        np.asarray(weights)))
        return out
    finally:
        random.setstate(state)


def _trim(x, y, weights):
    """Cut a batch's padding: tokens to its longest row, selections to its most."""
    length = ops.max(ops.sum(ops.cast(x["padding_mask"], "int32"), axis=1))
    selected = ops.maximum(1, ops.max(ops.sum(ops.cast(weights > 0, "int32"), axis=1)))
    x = {k: v[:, :selected] if k == "mask_positions" else v[:, :length] for k, v in x.items()}
    return x, y[:, :selected], weights[:, :selected]


# ----------------------------------------------------------------------------- metrics


def top_k_accuracy(ranks, k):
    """Share of positions whose true token has rank < k (rank 0: the top prediction)."""
    ranks = np.asarray(ranks)
    return float(np.mean(ranks < k)) if ranks.size else float("nan")


def label_ranks(logits, labels):
    """Rank of each label among its row's logits: the number of strictly larger logits.

    (Ties count in the label's favour, as `tf.math.in_top_k`.)
    """
    label_logit = ops.take_along_axis(logits, ops.expand_dims(labels, -1), axis=-1)
    return ops.sum(ops.cast(logits > label_logit, "int32"), axis=-1)


def evaluate_masked_lm(masked_lm, texts, batch_size=64, seed=0, ks=(1, 10)):
    """Masked-token top-k accuracy of `masked_lm` on `texts` (masked with `seed`).

    Returns `{"top1", "top10", "top1_mask", "top10_mask", "masked_tokens",
    "mask_tokens"}`: the `_mask` figures count only the positions whose input was the
    `[MASK]` token (80% of the selected ones).
    """
    mask_id = masked_lm.preprocessor.tokenizer.mask_token_id

    @tf.function(reduce_retracing=True)  # batches vary in length
    def ranks_of(x, y):
        logits = masked_lm(x, training=False)
        shown = ops.take_along_axis(x["token_ids"], x["mask_positions"], axis=1)
        return label_ranks(logits, y), shown == mask_id

    ranks, masked = [], []
    for x, y, weights in fixed_masked_batches(masked_lm.preprocessor, texts, batch_size, seed):
        rank, is_mask = ranks_of(x, y)
        ranks.append(rank.numpy()[weights > 0])
        masked.append(is_mask.numpy()[weights > 0])
    ranks, masked = np.concatenate(ranks), np.concatenate(masked)
    result = {"masked_tokens": int(ranks.size), "mask_tokens": int(masked.sum())}
    for k in ks:
        result[f"top{k}"] = top_k_accuracy(ranks, k)
        result[f"top{k}_mask"] = top_k_accuracy(ranks[masked], k)
    return result


# ----------------------------------------------------------------------------- training


def masked_states(masked_lm, batches):
    """The encoder's output at every selected position of `batches`, and its label."""
    @tf.function(reduce_retracing=True)  # batches vary in length
    def gather(x):
        hidden = sequence_output(masked_lm.backbone, x)
        return ops.take_along_axis(hidden, ops.expand_dims(x["mask_positions"], -1), axis=1)

    states, labels = [], []
    for x, y, weights in batches:
        states.append(gather(x).numpy()[weights > 0])
        labels.append(y[weights > 0])
    return np.concatenate(states), np.concatenate(labels).astype("int32")


def head_model(masked_lm):
    """A model from encoder outputs `[batch, 1, hidden]` to the head's logits (shares
    the head's weights): training it trains the masked LM's head."""
    head = mlm_head(masked_lm)
    states = keras.Input((1, masked_lm.backbone.hidden_dim), name="states")
    positions = keras.Input((1,), dtype="int32", name="positions")
    return keras.Model([states, positions], head(states, positions))


def _compile(model, learning_rate, steps):
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(1, steps), warmup_target=learning_rate, warmup_steps=max(1, steps // 20))
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="top1")])


def train_head(masked_lm, texts, *, epochs=3, maskings=1, batch_size=32,
               token_batch_size=256, learning_rate=1e-3, seed=0, log=print):
    """Train the head of a fully frozen encoder on its outputs, computed once."""
    start = time.time()
    parts = [masked_states(masked_lm, fixed_masked_batches(
        masked_lm.preprocessor, texts, batch_size, seed + m)) for m in range(maskings)]
    states = np.concatenate([p[0] for p in parts])[:, None, :]
    labels = np.concatenate([p[1] for p in parts])[:, None]
    log(f"fit-mlm-head: encoder outputs at {len(labels):,} masked positions "
        f"({maskings} masking(s) of {len(texts):,} sentences) in {time.time() - start:.0f} s")
    model = head_model(masked_lm)
    _compile(model, learning_rate, epochs * math.ceil(len(labels) / token_batch_size))
    history = model.fit([states, np.zeros_like(labels)], labels, batch_size=token_batch_size,
                        epochs=epochs, shuffle=True, verbose=2)
    return history.history, len(labels)


def train_end_to_end(masked_lm, texts, *, epochs=3, batch_size=32, learning_rate=2e-4,
                     seed=0, log=print):
    """Train the masked LM (its trainable part) on `texts`, masked anew every epoch."""
    data = masked_batches(masked_lm.preprocessor, texts, batch_size, seed)
    network = keras.Model(masked_lm.input, masked_lm.output)  # no preprocessor: done
    _compile(network, learning_rate, epochs * math.ceil(len(texts) / batch_size))
    history = network.fit(data, epochs=epochs, verbose=2, shuffle=False)  # data shuffles
    return history.history, None


def load_encoder(encoder):
    """`(backbone, tokenizer)` from a preset, a Hugging Face folder or a saved run."""
    from keras_tinybert.runs import load_model, load_tokenizer

    model = load_model(encoder)
    backbone = getattr(model, "backbone", model)
    return backbone, load_tokenizer(encoder, model)


def fit_mlm_head(encoder, corpus_files, output_dir, *, tokenizer=None, eval_files=None,
                 unfreeze_top=0, epochs=3, maskings=1, max_examples=None,
                 eval_examples=None, holdout=0.05, batch_size=32, token_batch_size=256,
                 learning_rate=None, sequence_length=128, seed=0, log=print):
    """Fit a new masked-LM head on `encoder`; save it to `output_dir`; report accuracy.

    Args:
        encoder: a keras-hub backbone (then give `tokenizer`), or a keras-hub preset
            name, a Hugging Face folder or a saved run / `.keras` file.
        corpus_files: training text (see `corpus_texts`).
        output_dir: a new or empty folder; the masked LM is saved there as a keras-hub
            preset (`MaskedLM.from_preset(output_dir)`), with `summary.json`.
        eval_files: held-out text for the accuracy; `None`: a `holdout` share of the
            corpus is held out.
        unfreeze_top: encoder blocks trained with the head (0: the encoder is frozen,
            its outputs computed once).
        epochs: passes over the corpus (over its `maskings` when frozen).
        max_examples / eval_examples: at most this many sentences (a seeded sample).
        learning_rate: peak of a warm-up + cosine schedule (AdamW); default 1e-3 for
            the head alone, 2e-4 with unfrozen blocks.

    Returns `(masked_lm, summary)`; `summary["eval"]` holds top-1 / top-10.
    """
    start = time.time()
    output_dir = pathlib.Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise ValueError(f"{output_dir} is not empty: give a new folder as output.")
    if isinstance(encoder, (str, pathlib.Path)):
        backbone, tokenizer = load_encoder(encoder)
    else:
        backbone = getattr(encoder, "backbone", encoder)
        tokenizer = tokenizer or getattr(getattr(encoder, "preprocessor", None), "tokenizer", None)
        if tokenizer is None:
            raise ValueError("Pass the encoder's tokenizer (tokenizer=...).")
    rng = np.random.default_rng(seed)
    texts = corpus_texts(corpus_files)
    texts = [texts[i] for i in rng.permutation(len(texts))]
    if eval_files:
        held_out = corpus_texts(eval_files)
        held_out = [held_out[i] for i in rng.permutation(len(held_out))]
    else:
        cut = max(1, int(len(texts) * holdout))
        held_out, texts = texts[:cut], texts[cut:]
    texts, held_out = texts[:max_examples], held_out[:eval_examples]
    masked_lm = new_masked_lm(backbone, tokenizer, sequence_length, seed)
    trainable = set_trainable(masked_lm, unfreeze_top)
    n_trainable = sum(int(np.prod(w.shape)) for w in trainable)
    log(f"fit-mlm-head: {len(texts):,} training / {len(held_out):,} held-out sentences; "
        f"{n_trainable:,} trainable parameters (head + top {unfreeze_top} blocks)")
    if unfreeze_top == 0:
        history, positions = train_head(
            masked_lm, texts, epochs=epochs, maskings=maskings, batch_size=batch_size,
            token_batch_size=token_batch_size, learning_rate=learning_rate or 1e-3,
            seed=seed, log=log)
    else:
        history, positions = train_end_to_end(
            masked_lm, texts, epochs=epochs, batch_size=batch_size,
            learning_rate=learning_rate or 2e-4, seed=seed, log=log)
    train_seconds = time.time() - start
    eval_seed = seed + 10_000  # not the training masks' seeds
    result = evaluate_masked_lm(masked_lm, held_out, seed=eval_seed)
    log("fit-mlm-head: held-out masked tokens: top-1 {top1:.4f}, top-10 {top10:.4f} "
        "([MASK] only: top-1 {top1_mask:.4f}, top-10 {top10_mask:.4f}; "
        "{masked_tokens:,} tokens)".format(**result))
    output_dir.mkdir(parents=True, exist_ok=True)
    masked_lm.save_to_preset(str(output_dir))
    summary = {
        "encoder": str(encoder) if isinstance(encoder, (str, pathlib.Path)) else
        type(backbone).__name__,
        "corpus": [str(f) for f in np.atleast_1d(corpus_files)],
        "eval_files": [str(f) for f in np.atleast_1d(eval_files)] if eval_files else None,
        "train_sentences": len(texts), "eval_sentences": len(held_out),
        "train_masked_positions": positions, "unfreeze_top": unfreeze_top,
        "trainable_parameters": n_trainable, "epochs": epochs, "maskings": maskings,
        "sequence_length": sequence_length, "seed": seed,
        "learning_rate": learning_rate or (1e-3 if unfreeze_top == 0 else 2e-4),
        "history": {k: [float(v) for v in vs] for k, vs in history.items()},
        "eval": result, "eval_seed": eval_seed, "train_seconds": round(train_seconds, 1),
        "seconds": round(time.time() - start, 1),
    }
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return masked_lm, summary
