"""Tiny keras-hub models for tests, examples and benchmarks.

Real encoders take seconds per step on a laptop CPU; these take milliseconds and
exercise exactly the same code paths (same classes, same layers, each family's
real tokenizer type: WordPiece, byte-level BPE, or a SentencePiece model trained
here on a few sentences). `tiny_classifier` & co. build BERTs; `tiny_family_model`
builds any keras-hub text-encoder family (`FAMILIES`), and `check_taps` is the
harness that compares a model's taps with the model's own forward pass.
"""

import collections
import dataclasses
import functools
import io
import random
import re
import weakref

import keras
import keras_hub
import numpy as np
import tensorflow as tf  # strings: keras-hub's preprocessors take tf.string on every backend

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# A small English vocabulary: enough for sentiment-like sentences, with a few
# WordPiece continuations so that some words split into several pieces.
_WORDS = (
    "the a an and or but of to in on for with is was are were be it this that "
    "film movie story actor actors plot scene scenes music good great bad "
    "terrible boring funny fun best worst love loved hate hated very not no "
    "really quite too so more most less fine nice awful brilliant dull "
    "charming smart stupid heart warm cold long short slow fast one two ever "
    "never time year people work performance director character characters "
    "script visual beautiful ugly i you he she we they his her their its "
    ". , ! ? ' - ( ) : ; un ##s ##ed ##ing ##ly ##er ##est ##ful ##ness "
    "##y ##able ##ish ##less ##ment ##ive ##al ##ic ##ous ##t ##d ##e ##r"
).split()


def tiny_vocabulary():
    """A WordPiece vocabulary of ~150 entries, special tokens first."""
    return SPECIAL_TOKENS + _WORDS


def tiny_preprocessor(vocabulary=None, sequence_length=32):
    """A `BertTextClassifierPreprocessor` over `vocabulary` (lower-cased)."""
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=vocabulary or tiny_vocabulary(), lowercase=True
    )
    return keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=sequence_length
    )


def tiny_backbone(
    num_layers=2,
    hidden_dim=32,
    num_heads=4,
    intermediate_dim=64,
    vocabulary_size=None,
    max_sequence_length=64,
    dropout=0.0,
    seed=0,
):
    """A randomly initialised `BertBackbone`, reproducible for a given seed."""
    keras.utils.set_random_seed(seed)
    return keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size or len(tiny_vocabulary()),
        num_layers=num_layers,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim,
        dropout=dropout,
        max_sequence_length=max_sequence_length,
    )


def tiny_classifier(
    num_layers=2,
    hidden_dim=32,
    num_heads=4,
    intermediate_dim=64,
    num_classes=2,
    sequence_length=32,
    dropout=0.0,
    seed=0,
    preprocessor=True,
):
    """A tiny `BertTextClassifier` with a real tokenizer; dropout off by default."""
    backbone = tiny_backbone(
        num_layers=num_layers,
        hidden_dim=hidden_dim,
        num_heads=num_heads,
        intermediate_dim=intermediate_dim,
        dropout=dropout,
        max_sequence_length=max(64, sequence_length),
        seed=seed,
    )
    return keras_hub.models.BertTextClassifier(
        backbone=backbone,
        num_classes=num_classes,
        preprocessor=tiny_preprocessor(sequence_length=sequence_length)
        if preprocessor
        else None,
        dropout=dropout,
    )


def tiny_masked_lm(num_layers=2, hidden_dim=32, num_heads=4, seed=0):
    """A tiny `BertMaskedLM` over the tiny vocabulary (for augmentation tests)."""
    backbone = tiny_backbone(
        num_layers=num_layers, hidden_dim=hidden_dim, num_heads=num_heads, seed=seed
    )
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=tiny_vocabulary(), lowercase=True
    )
    preprocessor = keras_hub.models.BertMaskedLMPreprocessor(
        tokenizer, sequence_length=32
    )
    return keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=preprocessor)


def vary_weights(classifier, sentences, scale=2.0, seed=0):
    """Re-draw a tiny classifier's weights so its logits depend on the sentence.

    keras-hub's BERT initialiser (std 0.02) makes a random model's pooled output almost
    the same for every input and its logits about ±0.01 with one argmax for all: parity
    checks on such a model pass trivially. This re-draws the backbone at unit scale
    (embeddings N(0, 1), kernels N(0, 1/fan_in)) and the output layer so the logits over
    `sentences` have standard deviation `scale` and are centred (the argmax splits them).
    Returns `classifier`, changed in place.
    """
    rng = np.random.default_rng(seed)
    for weight in classifier.backbone.weights:
        if not weight.path.endswith(("kernel", "embeddings")):
            continue
        shape = tuple(weight.shape)
        fan_in = shape[0] * (shape[1] if "attention_output" in weight.path else 1)
        std = 1.0 if weight.path.endswith("embeddings") else fan_in**-0.5
        weight.assign(rng.normal(0.0, std, size=shape).astype("float32"))
    inputs = classifier.preprocessor(tf.constant(list(sentences)))
    pooled = keras.ops.convert_to_numpy(classifier.backbone(inputs)["pooled_output"])
    output = classifier.output_dense
    kernel = rng.normal(size=tuple(output.kernel.shape))
    kernel *= scale / (pooled @ kernel).std(axis=0)
    output.kernel.assign(kernel.astype("float32"))
    output.bias.assign((-(pooled @ kernel).mean(axis=0)).astype("float32"))
    return classifier


def word_vocabulary(sentences, size=4000):
    """A WordPiece vocabulary of the `size` most frequent words in `sentences`.

    Special tokens first, then every character seen (alone and as `##` continuation,
    so no word maps to [UNK]), then whole words by frequency. Lower-cased, split like
    BERT's basic tokenizer (whitespace and punctuation). For training test students on
    real text (SST-2) without a pretrained vocabulary.
    """
    words = collections.Counter()
    for sentence in sentences:
        words.update(re.findall(r"\w+|[^\w\s]", sentence.lower()))
    chars = sorted({c for word in words for c in word})
    vocabulary = list(SPECIAL_TOKENS) + chars + ["##" + c for c in chars]
    known = set(vocabulary)
    for word, _ in words.most_common():
        if len(vocabulary) >= size:
            break
        if word not in known:
            vocabulary.append(word)
            known.add(word)
    return vocabulary


def tiny_classifier_with_vocabulary(
    vocabulary, num_classes=2, sequence_length=32, dropout=0.0, **backbone_args
):
    """Like `tiny_classifier`, over another vocabulary (e.g. `word_vocabulary`).

    `backbone_args` go to `tiny_backbone` (num_layers, hidden_dim, num_heads, ...).
    """
    backbone = tiny_backbone(
        vocabulary_size=len(vocabulary),
        max_sequence_length=max(64, sequence_length),
        dropout=dropout,
        **backbone_args,
    )
    preprocessor = tiny_preprocessor(vocabulary, sequence_length=sequence_length)
    return keras_hub.models.BertTextClassifier(
        backbone, num_classes, preprocessor=preprocessor, dropout=dropout
    )


def tiny_distiller(optimizer, stage="joint", student_dropout=None):
    """A tiny teacher (4L-48H) → student (2L-32H) `Distiller`, compiled; same weights
    every call. Call it inside a strategy's scope for distributed tests."""
    import keras_tinybert as kt

    teacher = tiny_classifier(num_layers=4, hidden_dim=48, seed=1)
    keras.utils.set_random_seed(2)
    student = kt.models.student_like(teacher, 2, 32, 64, dropout=student_dropout)
    distiller = kt.Distiller(teacher, student, stage=stage)
    distiller.compile(optimizer=optimizer)
    return distiller


def train_sentencepiece(sentences, **options):
    """A SentencePiece model (serialised proto) trained on `sentences` with the
    trainer's `options` (needs the `sentencepiece` package, a keras-hub
    dependency)."""
    import sentencepiece

    proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=proto, minloglevel=2, **options)
    return proto.getvalue()


def tiny_sentencepiece_classifier(sentences, case_folding=True, sequence_length=32, seed=0):
    """A tiny `AlbertTextClassifier` over a SentencePiece model trained here on
    `sentences` (unigram, about 40 pieces, with ALBERT's [CLS], [SEP], <pad>, <unk> and
    [MASK]). `case_folding`: the model's normaliser lower-cases (`nmt_nfkc_cf`), as an
    uncased model's does; else it keeps case (`nmt_nfkc`)."""
    text = list(sentences) + [s.title() for s in sentences[: len(sentences) // 4]]
    proto = train_sentencepiece(
        text, vocab_size=40, model_type="unigram",
        pad_id=0, unk_id=1, bos_id=2, eos_id=3, pad_piece="<pad>", unk_piece="<unk>",
        bos_piece="[CLS]", eos_piece="[SEP]", user_defined_symbols="[MASK]",
        normalization_rule_name="nmt_nfkc_cf" if case_folding else "nmt_nfkc",
    )
    tokenizer = keras_hub.models.AlbertTokenizer(proto=proto)
    preprocessor = keras_hub.models.AlbertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.AlbertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2, num_heads=2, num_groups=1,
        num_inner_repetitions=1, embedding_dim=16, hidden_dim=32, intermediate_dim=64,
        max_sequence_length=max(64, sequence_length), dropout=0.0,
    )
    return keras_hub.models.AlbertTextClassifier(backbone, 2, preprocessor=preprocessor, dropout=0.0)


# ------------------------------------------------------------------ families --
def tiny_sentences(count=200, seed=0):
    """`count` short lower-case sentences over the tiny vocabulary's words."""
    words = [w for w in _WORDS if w.isalpha()]
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(2, 9)))
            for _ in range(count)]


REVIEW_WORDS = ("the a film movie story good great bad boring funny not very charming "
                "dull love hate plot actors").split()


def review_sentences(count, seed):
    """`count` random film-review-like sentences of 2–11 words (export tests)."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(REVIEW_WORDS, size=rng.integers(2, 12)))
            for _ in range(count)]


def sentencepiece_proto(pad, unk, bos, eos, mask=None, vocabulary_size=120):
    """A SentencePiece model (serialised proto) trained on `tiny_sentences`.

    Each argument is ``(id, piece)`` for that special token (id -1: none), as the
    family's real model has them (ALBERT: ``<pad>`` 0, ``<unk>`` 1, ``[CLS]`` 2,
    ``[SEP]`` 3; DeBERTaV3: ``[PAD]`` 0, ``[CLS]`` 1, ...). Needs the
    `sentencepiece` package (a keras-hub dependency).
    """
    return _sentencepiece_proto(pad, unk, bos, eos, mask, vocabulary_size)


@functools.lru_cache(maxsize=None)
def _sentencepiece_proto(pad, unk, bos, eos, mask, vocabulary_size):
    pieces = {f"{name}_id": p[0] for name, p in
              (("pad", pad), ("unk", unk), ("bos", bos), ("eos", eos))}
    pieces.update({f"{name}_piece": p[1] for name, p in
                   (("pad", pad), ("unk", unk), ("bos", bos), ("eos", eos)) if p[0] >= 0})
    return train_sentencepiece(
        tiny_sentences(400), vocab_size=vocabulary_size, model_type="unigram",
        hard_vocab_limit=False, user_defined_symbols=mask or "", **pieces)


def byte_pair_vocabulary(words=None):
    """A byte-level BPE vocabulary and merges (RoBERTa's format) for `words`.

    Every printable ASCII byte is a token (so no text is unknown); each word, with
    and without its leading space ("Ġ"), is built by merges from the left.
    """
    words = words or [w for w in _WORDS if w.isalpha()]
    vocabulary = ["<s>", "<pad>", "</s>", "<unk>", "Ġ"]
    vocabulary += [chr(c) for c in range(33, 127)]
    merges = []
    for word in words:
        for form in ("Ġ" + word, word):
            for k in range(1, len(form)):
                merge = f"{form[:k]} {form[k]}"
                if merge not in merges:
                    merges.append(merge)
                    vocabulary.append(form[: k + 1])
    vocabulary = list(dict.fromkeys(vocabulary)) + ["<mask>"]
    return {token: i for i, token in enumerate(vocabulary)}, merges


def _wordpiece(tokenizer_cls):
    return lambda: tokenizer_cls(vocabulary=tiny_vocabulary(), lowercase=True)


def _sentencepiece(tokenizer_cls, **specials):
    return lambda: tokenizer_cls(proto=sentencepiece_proto(**specials))


def _byte_pair():
    vocabulary, merges = byte_pair_vocabulary()
    return keras_hub.models.RobertaTokenizer(vocabulary=vocabulary, merges=merges)


_ALBERT_PIECES = dict(pad=(0, "<pad>"), unk=(1, "<unk>"), bos=(2, "[CLS]"),
                      eos=(3, "[SEP]"), mask="[MASK]")


@dataclasses.dataclass(frozen=True)
class Family:
    """How to build a tiny model of one keras-hub text-encoder family.

    Attributes:
        name: short name (``"bert"``, ``"deberta_v3"``, ...).
        backbone: the backbone class.
        classifier: the `TextClassifier` class, or None (ELECTRA in 0.32).
        preprocessor: the classifier's preprocessor class (BERT's packer for a
            family without one).
        tokenizer: builds the family's real tokenizer type on a tiny vocabulary.
        extra: backbone arguments beyond the shared shape (``name(hidden_dim,
            num_heads) -> dict``).
    """

    name: str
    backbone: type
    classifier: type
    preprocessor: type
    tokenizer: object
    extra: object = lambda hidden_dim, num_heads: {}

    def shape(self, num_layers, hidden_dim, num_heads, intermediate_dim,
              vocabulary_size, dropout, max_sequence_length):
        """The backbone's arguments for this shape, in the family's own names."""
        args = dict(num_layers=num_layers, hidden_dim=hidden_dim,
                    intermediate_dim=intermediate_dim, dropout=dropout,
                    **self.extra(hidden_dim, num_heads))
        args.setdefault("vocabulary_size", vocabulary_size)
        args.setdefault("num_heads", num_heads)
        args.setdefault("max_sequence_length", max_sequence_length)
        return {k: v for k, v in args.items() if v is not _NONE}


_NONE = object()  # an argument the family does not take
models_ = keras_hub.models

FAMILIES = {
    f.name: f
    for f in (
        Family("bert", models_.BertBackbone, models_.BertTextClassifier,
               models_.BertTextClassifierPreprocessor, _wordpiece(models_.BertTokenizer)),
        Family("distil_bert", models_.DistilBertBackbone, models_.DistilBertTextClassifier,
               models_.DistilBertTextClassifierPreprocessor,
               _wordpiece(models_.DistilBertTokenizer)),
        Family("roberta", models_.RobertaBackbone, models_.RobertaTextClassifier,
               models_.RobertaTextClassifierPreprocessor, _byte_pair),
        Family("xlm_roberta", models_.XLMRobertaBackbone, models_.XLMRobertaTextClassifier,
               models_.XLMRobertaTextClassifierPreprocessor,
               _sentencepiece(models_.XLMRobertaTokenizer, pad=(-1, ""),
                              unk=(0, "<unk>"), bos=(1, "<s>"), eos=(2, "</s>"))),
        Family("albert", models_.AlbertBackbone, models_.AlbertTextClassifier,
               models_.AlbertTextClassifierPreprocessor,
               _sentencepiece(models_.AlbertTokenizer, **_ALBERT_PIECES),
               # one shared block, called num_layers times; factorised embeddings
               lambda d, h: dict(embedding_dim=d // 2, num_groups=1,
                                 num_inner_repetitions=1)),
        Family("deberta_v3", models_.DebertaV3Backbone, models_.DebertaV3TextClassifier,
               models_.DebertaV3TextClassifierPreprocessor,
               _sentencepiece(models_.DebertaV3Tokenizer, pad=(0, "[PAD]"),
                              bos=(1, "[CLS]"), eos=(2, "[SEP]"), unk=(3, "[UNK]"),
                              mask="[MASK]"),
               # small buckets: sequences of tests reach the log-bucketed positions
               lambda d, h: dict(bucket_size=8)),
        Family("electra", models_.ElectraBackbone, None,
               models_.BertTextClassifierPreprocessor,
               _wordpiece(models_.ElectraTokenizer),
               lambda d, h: dict(embedding_dim=d // 2, vocab_size=_VOCAB,
                                 vocabulary_size=_NONE)),
        Family("f_net", models_.FNetBackbone, models_.FNetTextClassifier,
               models_.FNetTextClassifierPreprocessor,
               _sentencepiece(models_.FNetTokenizer, **_ALBERT_PIECES),
               lambda d, h: dict(num_heads=_NONE)),
        Family("roformer_v2", models_.RoformerV2Backbone, models_.RoformerV2TextClassifier,
               models_.RoformerV2TextClassifierPreprocessor,
               _wordpiece(models_.RoformerV2Tokenizer),
               lambda d, h: dict(head_size=d // h, max_sequence_length=_NONE)),
    )
}
_VOCAB = object()  # ELECTRA names the vocabulary size `vocab_size`


def tiny_family_model(family, num_layers=2, hidden_dim=32, num_heads=4,
                      intermediate_dim=64, num_classes=2, sequence_length=16,
                      dropout=0.0, task=True, seed=0):
    """A tiny randomly initialised model of `family` (a name of `FAMILIES`) with
    its real tokenizer type: its `TextClassifier` with a preprocessor, or its
    backbone when ``task=False`` or the family has no classifier."""
    spec = FAMILIES[family]
    # Seed first: `tf.random.set_seed` clears TensorFlow's eager kernel cache, and
    # with it a SentencePiece tokenizer's resource, which tf.data then cannot find.
    keras.utils.set_random_seed(seed)
    tokenizer = spec.tokenizer()
    args = spec.shape(num_layers, hidden_dim, num_heads, intermediate_dim,
                      tokenizer.vocabulary_size(), dropout,
                      max(64, sequence_length))
    args = {k: (tokenizer.vocabulary_size() if v is _VOCAB else v)
            for k, v in args.items()}
    backbone = spec.backbone(**args)
    preprocessor = spec.preprocessor(tokenizer, sequence_length=sequence_length)
    if not task or spec.classifier is None:
        return with_preprocessor(backbone, preprocessor)
    return spec.classifier(backbone, num_classes, preprocessor=preprocessor,
                           dropout=dropout)


_BACKBONE_PREPROCESSORS = weakref.WeakKeyDictionary()


def with_preprocessor(backbone, preprocessor):
    """`backbone`, remembered (here, not as a tracked layer of it) to read the
    inputs of `preprocessor`: a keras-hub backbone holds none."""
    _BACKBONE_PREPROCESSORS[backbone] = preprocessor
    return backbone


def preprocessor_of(model):
    """The preprocessor of a tiny model (a backbone's from `with_preprocessor`)."""
    preprocessor = getattr(model, "preprocessor", None)
    return preprocessor if preprocessor is not None else _BACKBONE_PREPROCESSORS[model]


def family_inputs(model, sentences):
    """The model's input dict for `sentences`, as NumPy arrays."""
    x = preprocessor_of(model)(tf.constant(list(sentences)))
    return {k: np.asarray(v) for k, v in x.items()}


def spread_weights(model, seed=0):
    """Re-draw every kernel and embedding of `model` at unit scale, in place.

    keras-hub's initialisers (std 0.02) make a random model's scores and logits
    nearly constant, so parity checks on them pass too easily; after this, a
    wrong score or head shows up well above float rounding.
    """
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if weight.path.endswith(("kernel", "embeddings", "rel_embedding")):
            shape = tuple(weight.shape)
            std = 1.0 if len(shape) < 2 or not weight.path.endswith("kernel") else shape[0] ** -0.5
            weight.assign(rng.normal(0.0, std, size=shape).astype(weight.dtype))
    return model


def check_taps(model, inputs, atol=1e-5):
    """The shared harness: `Taps(model)` equals the model's own forward pass.

    Checks that the embedding output and every block call's output equal what
    Keras computes through the backbone's graph, that the logits (for a task
    model) equal ``model(inputs)``, and the shapes of the attention scores.
    Returns the taps' outputs for further checks.
    """
    from keras_tinybert.taps import Taps, block_calls

    taps = Taps(model)
    got = taps(inputs)
    backbone = taps.backbone
    calls = block_calls(backbone)
    symbolic = [calls[0][0].arguments.args[0]] + [n.outputs[0] for n, _ in calls]
    reference = keras.Model(backbone.input, symbolic)(_own(backbone, inputs))
    for i, (r, g) in enumerate(zip(reference, [got["embedding"]] + got["hidden"])):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), atol=atol,
                                   err_msg=f"tap {i} (0 = embedding)")
    B, T = inputs["token_ids"].shape
    assert len(got["hidden"]) == taps.num_layers
    if taps.has_attention:
        assert [tuple(a.shape) for a in got["attention"]] == (
            [(B, taps.num_heads, T, T)] * taps.num_layers)
    else:
        assert got["attention"] == []
    if taps.has_logits:
        np.testing.assert_allclose(np.asarray(got["logits"]),
                                   np.asarray(model(_own(model, inputs))), atol=atol)
    return got


def _own(model, inputs):
    """The inputs `model` takes (Keras would mis-assign extra keys)."""
    return {k: inputs[k] for k in model.input}
