"""Tiny keras-hub BERT models for tests, examples and benchmarks.

Real BERTs take seconds per step on a laptop CPU; these take milliseconds and exercise
exactly the same code paths (same classes, same layers, a real WordPiece tokenizer).
"""

import collections
import re

import keras
import keras_hub
import numpy as np

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
    inputs = classifier.preprocessor(keras.ops.convert_to_tensor(list(sentences)))
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


def tiny_sentencepiece_classifier(sentences, case_folding=True, sequence_length=32, seed=0):
    """A tiny `AlbertTextClassifier` over a SentencePiece model trained here on
    `sentences` (unigram, about 40 pieces, with ALBERT's [CLS], [SEP], <pad>, <unk> and
    [MASK]). `case_folding`: the model's normaliser lower-cases (`nmt_nfkc_cf`), as an
    uncased model's does; else it keeps case (`nmt_nfkc`)."""
    import io

    import sentencepiece

    model = io.BytesIO()
    text = list(sentences) + [s.title() for s in sentences[: len(sentences) // 4]]
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_writer=model, vocab_size=40, model_type="unigram",
        pad_id=0, unk_id=1, bos_id=2, eos_id=3, pad_piece="<pad>", unk_piece="<unk>",
        bos_piece="[CLS]", eos_piece="[SEP]", user_defined_symbols="[MASK]",
        normalization_rule_name="nmt_nfkc_cf" if case_folding else "nmt_nfkc",
        minloglevel=2,
    )
    tokenizer = keras_hub.models.AlbertTokenizer(proto=model.getvalue())
    preprocessor = keras_hub.models.AlbertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.AlbertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2, num_heads=2, num_groups=1,
        num_inner_repetitions=1, embedding_dim=16, hidden_dim=32, intermediate_dim=64,
        max_sequence_length=max(64, sequence_length), dropout=0.0,
    )
    return keras_hub.models.AlbertTextClassifier(backbone, 2, preprocessor=preprocessor, dropout=0.0)
