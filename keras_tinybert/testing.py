"""Tiny keras-hub BERT models for tests, examples and benchmarks.

Real BERTs take seconds per step on a laptop CPU; these take milliseconds and exercise
exactly the same code paths (same classes, same layers, a real WordPiece tokenizer).
"""

import keras
import keras_hub

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
