"""Words as the paper's augmentation sees them (§3.1): BERT's basic tokenizer output.

A word is eligible for replacement if it is purely alphabetic and not a stop word (the
paper's code: `_is_valid` and `StopWordsList`, NLTK's English list plus "'s", "'re").
"""

import re

import tensorflow as tf
from keras_hub.src.tokenizers.word_piece_tokenizer import pretokenize, pretokenize_python

# The paper's code's stop words: NLTK's English list without the wh-words, plus
# "'s" and "'re".
STOP_WORDS = frozenset(
    """
    i me my myself we our ours ourselves you you're you've you'll you'd your yours
    yourself yourselves he him his himself she she's her hers herself it it's its itself
    they them their theirs themselves this that that'll these those
    am is are was were be been being have has had having do does did doing a an the and
    but if or because as until while of at by for with about against between into
    through during before after above below to from up down in out on off over under
    again further then once here there all any both each few more
    most other some such no nor not only own same so than too very s t can will just
    don don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn
    didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn
    mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't weren
    weren't won won't wouldn wouldn't 's 're
    """.split()
)

_ALPHABETIC = re.compile(r"[A-Za-z]+")


def is_eligible(word, stop_words=STOP_WORDS):
    """True for words the augmenter may replace: alphabetic ASCII, not a stop word."""
    return bool(_ALPHABETIC.fullmatch(word)) and word.lower() not in stop_words


def basic_words(text, tokenizer):
    """Split `text` into words exactly as `tokenizer` (a keras-hub WordPiece tokenizer)
    does before WordPiece: same lower-casing, accent stripping and punctuation splits."""
    return pretokenize_python(
        text,
        lowercase=tokenizer.lowercase,
        strip_accents=tokenizer.strip_accents,
        split=tokenizer.split,
        split_on_cjk=tokenizer.split_on_cjk,
    )


def basic_words_batch(texts, tokenizer):
    """`basic_words` for many texts in one TF call (keras-hub's graph pre-tokenizer)."""
    if not texts:
        return []
    words = _pretokenize_graph(
        tf.constant(list(texts)), tokenizer.lowercase, tokenizer.strip_accents,
        tokenizer.split, tokenizer.split_on_cjk)
    return [[w.decode("utf-8") for w in row] for row in words.to_list()]


@tf.function(reduce_retracing=True)
def _pretokenize_graph(texts, lowercase, strip_accents, split, split_on_cjk):
    return pretokenize(texts, lowercase=lowercase, strip_accents=strip_accents,
                       split=split, split_on_cjk=split_on_cjk)
