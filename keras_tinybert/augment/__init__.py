"""The paper's data augmentation (TinyBERT §3.1), batched.

    mlm = kt.augment.MaskedLMCandidates(keras_hub.models.BertMaskedLM.from_preset(...))
    glove = kt.augment.GloVe.load("glove.6B.300d.txt")          # or "kumo"
    augmenter = kt.augment.Augmenter(mlm, glove, n_samples=20, p=0.4, k=15, seed=0)
    augmenter.augment(["a charming and often affecting journey ."])
    kt.augment.augment_tsv("sst2", "glue/SST-2", "glue_aug/SST-2", augmenter)

or `keras-tinybert augment --task sst2 --data-dir ... --mlm ... --glove ... --output ...`.
For an encoder without a masked-LM head (all-MiniLM-L6-v2), `fit_mlm_head(encoder,
corpus_files, output_dir)` / `keras-tinybert fit-mlm-head` fits one first.
"""

from keras_tinybert.augment.augmenter import Augmenter
from keras_tinybert.augment.files import augment_tsv
from keras_tinybert.augment.glove import GloVe
from keras_tinybert.augment.load_mlm import load_masked_lm
from keras_tinybert.augment.mlm import MaskedLMCandidates
from keras_tinybert.augment.mlm_head import evaluate_masked_lm, fit_mlm_head
from keras_tinybert.augment.words import STOP_WORDS, basic_words, is_eligible

__all__ = [
    "Augmenter", "GloVe", "MaskedLMCandidates", "STOP_WORDS", "augment_tsv",
    "basic_words", "evaluate_masked_lm", "fit_mlm_head", "is_eligible", "load_masked_lm",
]
