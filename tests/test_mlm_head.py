"""A masked-LM head fitted on a pre-trained encoder (augment/mlm_head.py, fit-mlm-head)."""

import argparse
import json
import math

import keras_hub
import numpy as np
import pytest

from keras_tinybert.augment import MaskedLMCandidates, load_masked_lm
from keras_tinybert.augment import mlm_head as M
from keras_tinybert.testing import tiny_backbone, tiny_classifier, tiny_vocabulary

TEXTS = ["the film was charming and funny .", "a boring , ugly plot",
         "it is a good movie", "the actors were great but the plot was dull",
         "i loved the music and the story", "a long , slow and boring film"]


@pytest.fixture
def tokenizer():
    return keras_hub.models.BertTokenizer(vocabulary=tiny_vocabulary(), lowercase=True)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(TEXTS * 8) + "\n")
    return path


def weights_of(layer):
    return {w.path: np.array(w.numpy()) for w in layer.weights}


def test_head_is_new_and_tied_to_the_token_embedding(tokenizer):
    """logits = LN(gelu(h W + b)) Eᵀ + b_v with E the encoder's own embedding matrix."""
    masked_lm = M.new_masked_lm(tiny_backbone(seed=3), tokenizer)
    head, backbone = M.mlm_head(masked_lm), masked_lm.backbone
    assert head.token_embedding is backbone.token_embedding
    assert sorted(w.path.split("/")[-1] for w in head.weights if "embedding" not in w.path) == [
        "beta", "bias", "gamma", "kernel", "output_bias"]  # no output kernel of its own
    x, _, _ = M.fixed_masked_batches(masked_lm.preprocessor, TEXTS, 8, seed=1)[0]
    logits = np.asarray(masked_lm(x))
    h = np.asarray(backbone({k: x[k] for k in backbone.input})["sequence_output"])
    h = np.take_along_axis(h, x["mask_positions"][..., None], axis=1)
    dense, norm = head._intermediate_dense, head._intermediate_layer_norm
    z = h @ dense.kernel.numpy() + dense.bias.numpy()
    z = 0.5 * z * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))  # exact GELU
    z = (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + head.layer_norm_epsilon)
    z = z * norm.gamma.numpy() + norm.beta.numpy()
    embedding = backbone.token_embedding.embeddings.numpy()
    np.testing.assert_allclose(logits, z @ embedding.T + head._bias.numpy(), atol=2e-5)


def test_frozen_encoder_only_the_head_trains(tokenizer, corpus, tmp_path):
    backbone = tiny_backbone(seed=3)
    before = weights_of(backbone)
    masked_lm, summary = M.fit_mlm_head(backbone, [corpus], tmp_path / "out",
                                        tokenizer=tokenizer, epochs=2, token_batch_size=16,
                                        log=lambda _: None)
    head = M.mlm_head(masked_lm)
    new = [w for w in head.weights if "embedding" not in w.path]
    assert summary["trainable_parameters"] == sum(int(np.prod(w.shape)) for w in new)
    assert {id(w) for w in masked_lm.trainable_weights} == {id(w) for w in new}
    for path, value in weights_of(backbone).items():
        np.testing.assert_array_equal(value, before[path], err_msg=path)
    init = weights_of(M.mlm_head(M.new_masked_lm(tiny_backbone(seed=3), tokenizer)))
    changed = [p for p, v in weights_of(head).items() if not np.array_equal(v, init[p])]
    assert sorted(changed) == sorted(w.path for w in new)
    assert summary["train_masked_positions"] > 20
    assert summary["history"]["loss"][-1] < summary["history"]["loss"][0]


def test_unfreeze_top_trains_the_top_blocks_only(tokenizer, corpus, tmp_path):
    backbone = tiny_backbone(seed=3)
    before = weights_of(backbone)
    masked_lm, summary = M.fit_mlm_head(backbone, [corpus], tmp_path / "out",
                                        tokenizer=tokenizer, unfreeze_top=1, epochs=1,
                                        batch_size=8, log=lambda _: None)
    top = {w.path for w in backbone.transformer_layers[-1].weights}
    for path, value in weights_of(backbone).items():
        same = np.array_equal(value, before[path])
        assert same != (path in top), path  # exactly the top block's weights moved
    assert summary["trainable_parameters"] == sum(
        int(np.prod(w.shape)) for w in masked_lm.trainable_weights)
    with pytest.raises(ValueError, match=r"unfreeze_top must be in \[0, 2\]"):
        M.set_trainable(masked_lm, 3)


def test_top_k_accuracy_against_a_numpy_recount(tokenizer):
    masked_lm = M.new_masked_lm(tiny_backbone(seed=5), tokenizer)
    head = M.mlm_head(masked_lm)  # a random head, "the" first unless the input says otherwise
    bias = np.random.default_rng(0).normal(0, 2, head._bias.shape)
    bias[tiny_vocabulary().index("the")] += 6
    head._bias.assign(bias.astype("float32"))
    texts = TEXTS * 6
    result = M.evaluate_masked_lm(masked_lm, texts, batch_size=8, seed=7, ks=(1, 3, 10))
    hits, shown_mask = {1: [], 3: [], 10: []}, []
    for x, y, weights in M.fixed_masked_batches(masked_lm.preprocessor, texts, 8, seed=7):
        logits = np.asarray(masked_lm(x))
        for b, m in zip(*np.nonzero(weights)):
            order = np.argsort(-logits[b, m])
            for k in hits:
                hits[k].append(y[b, m] in order[:k])
            shown_mask.append(x["token_ids"][b, x["mask_positions"][b, m]] == 4)  # [MASK]
    shown_mask = np.array(shown_mask)
    assert result["masked_tokens"] == len(shown_mask) > 20
    assert 0 < result["mask_tokens"] == shown_mask.sum() < len(shown_mask)  # 80/10/10
    for k in hits:
        found = np.array(hits[k])
        assert result[f"top{k}"] == pytest.approx(found.mean())
        assert result[f"top{k}_mask"] == pytest.approx(found[shown_mask].mean())
    assert 0 < result["top1"] < result["top10"] < 1
    # The same seed masks the same way; another seed does not.
    assert M.evaluate_masked_lm(masked_lm, texts, 8, seed=7, ks=(1, 3, 10)) == result
    positions = [x["mask_positions"] for x, _, _ in
                 M.fixed_masked_batches(masked_lm.preprocessor, texts, 8, seed=8)]
    assert any(not np.array_equal(p, x["mask_positions"]) for p, (x, _, _) in zip(
        positions, M.fixed_masked_batches(masked_lm.preprocessor, texts[::-1], 8, seed=7)))
    assert all(np.array_equal(p, x["mask_positions"]) for p, (x, _, _) in zip(
        positions, M.fixed_masked_batches(masked_lm.preprocessor, texts[::-1], 8, seed=8)))


def test_label_ranks_count_strictly_larger_logits():
    logits = np.array([[[0.5, 2.0, 2.0, -1.0]]], "float32")
    ranks = [int(np.asarray(M.label_ranks(logits, np.array([[i]])))[0, 0]) for i in range(4)]
    assert ranks == [2, 0, 0, 3]
    assert M.top_k_accuracy([0, 1, 2, 9, 10], 10) == 0.8


def test_corpus_texts_glue_tsv_and_wikitext(tmp_path):
    sst = tmp_path / "SST-2"
    sst.mkdir()
    (sst / "train.tsv").write_text("sentence\tlabel\na charming film \t1\nboring\t0\n")
    wiki = tmp_path / "wiki.txt"
    wiki.write_text(" = Title = \n\n The <unk> cost 1 @,@ 000 . A guest @-@ star role .\n")
    expected = ["a charming film", "boring", "The cost 1,000 .", "A guest-star role ."]
    assert M.corpus_texts([sst / "train.tsv", wiki]) == expected
    other = tmp_path / "data.tsv"
    other.write_text((sst / "train.tsv").read_text())
    assert M.corpus_texts([f"sst2:{other}"]) == expected[:2]
    with pytest.raises(ValueError, match="TASK:PATH"):
        M.corpus_texts([other])


def test_cli_fits_saves_and_augment_loads_it(tmp_path, corpus, capsys):
    from keras_tinybert.commands import fit_mlm_head

    encoder = tmp_path / "teacher.keras"
    tiny_classifier(seed=2).save(encoder)  # a saved run: backbone + tokenizer
    parser = argparse.ArgumentParser()
    fit_mlm_head.add_arguments(parser)
    out = tmp_path / "mlm"
    args = parser.parse_args(["--encoder", str(encoder), "--corpus", str(corpus),
                              "--eval", str(corpus), "--output", str(out), "--epochs", "1",
                              "--token-batch-size", "16"])
    assert fit_mlm_head.run(args) == 0
    assert "top-1" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["eval"]["masked_tokens"] > 0 and summary["unfreeze_top"] == 0
    loaded = load_masked_lm(str(out))  # what `augment --mlm DIR` does
    assert isinstance(loaded, keras_hub.models.BertMaskedLM)
    held_out = M.corpus_texts([corpus])  # the saved model is the one evaluated
    assert M.evaluate_masked_lm(loaded, held_out, seed=summary["eval_seed"]) == summary["eval"]
    mlm = MaskedLMCandidates(loaded, k=5)
    pieces = mlm.word_pieces(["the", "film", "was", "good"])
    assert len(mlm.candidates([(pieces, 1)])[0]) > 0
    assert fit_mlm_head.run(args) == 2  # the output is not empty now
    assert "not empty" in capsys.readouterr().err

