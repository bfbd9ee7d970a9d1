"""Export of every keras-hub text-encoder family: family x {TFLite + verify, SavedModel
token ids + verify, SavedModel raw text + verify}, on tiny models with each family's
real tokenizer type (`keras_tinybert.testing.FAMILIES`); and a sentence-pair student
exported through the CLI serves both of its texts."""

import json
import warnings

import numpy as np
import pytest
import tensorflow as tf

from keras_tinybert import cli, runs, testing
from keras_tinybert import export as kt_export
from keras_tinybert.export import litert
from keras_tinybert.export.client_metadata import INPUT_ORDER, client_problems

TASK_FAMILIES = [f for f, spec in testing.FAMILIES.items() if spec.classifier is not None]
FAST = {"bert", "roberta", "f_net"}  # one per input layout; the rest run under -m slow


def _param(family):
    return pytest.param(family, marks=() if family in FAST else pytest.mark.slow)


@pytest.fixture(scope="module")
def sentences():
    return testing.tiny_sentences(24, seed=1)


def _model(family):
    # spread weights: keras-hub's 0.02 initialisers give near-constant logits, which any
    # wrong input (a dropped mask, a missing segment) would still match
    return testing.spread_weights(testing.tiny_family_model(family, num_layers=2, sequence_length=16))


def _spread(parity):
    """Keras' logits differ between examples: the comparison can fail."""
    assert np.ptp(parity.keras_logits[:, 0]) > 1e-2


@pytest.mark.parametrize("family", [_param(f) for f in TASK_FAMILIES])
def test_saved_model_token_ids_and_raw_text(family, sentences, tmp_path):
    model = _model(family)
    path = kt_export.saved_model(model, tmp_path / family, preprocessor=model.preprocessor)
    signature = tf.saved_model.load(str(path)).signatures["serve_token_ids"]
    assert sorted(signature.structured_input_signature[1]) == sorted(model.input)  # the model's own
    ids = kt_export.verify(path, model, sentences, signature="serve_token_ids")
    text = kt_export.verify(path, model, sentences)
    assert text.signature == "serving_default"
    for parity in (ids, text):
        _spread(parity)
        assert parity.max_abs_diff < 1e-4 and parity.agreement == 1.0
    metadata = json.loads(kt_export.metadata_path(path).read_text())
    assert metadata["inputs"] == list(kt_export.input_names(model))
    assert metadata["raw_text_inputs"] == ["text"]


@pytest.mark.parametrize("family", [_param(f) for f in TASK_FAMILIES])
def test_tflite(family, sentences, tmp_path):
    """Builtin ops only, for every family (DeBERTaV3, F-Net and RoFormerV2 through
    `builtin_ops`' formulations), and the file's logits are Keras'."""
    model = _model(family)
    path = tmp_path / f"{family}.tflite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kt_export.ClientMetadataWarning)
        kt_export.tflite(model, path, outputs="logits")
    metadata = json.loads(kt_export.metadata_path(path).read_text())
    own = list(kt_export.input_names(model))
    assert metadata["model_inputs"] == own
    # a model the clients can read takes their three inputs (ignoring those it does not read)
    client_ready = set(own) <= set(INPUT_ORDER) and not client_problems(model.preprocessor)
    assert metadata["inputs"] == (list(INPUT_ORDER) if client_ready else own)
    assert metadata["client_metadata"] == client_ready
    assert b"HashTable" not in path.read_bytes()  # converted without the tokenizer
    assert metadata["select_tf_ops"] == []
    parity = kt_export.verify(path, model, sentences)
    _spread(parity)
    assert parity.max_abs_diff < 1e-3 and parity.agreement == 1.0


def test_bare_backbone_is_a_clear_error(tmp_path):
    backbone = testing.tiny_family_model("electra")
    for export in (lambda: kt_export.tflite(backbone, tmp_path / "e.tflite"),
                   lambda: kt_export.saved_model(backbone, tmp_path / "e")):
        with pytest.raises(ValueError, match="backbone.*not a classifier"):
            export()
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_truncate_without_padding_mask():
    """F-Net and RoFormerV2 take no mask: an over-long row is cut to L, ending with its last id."""
    ids = tf.constant([[1, 5, 6, 7, 8, 2]])
    cut = litert.truncate_like_keras({"token_ids": ids, "segment_ids": tf.zeros_like(ids)}, 4)
    np.testing.assert_array_equal(cut["token_ids"], [[1, 5, 6, 2]])


# --- a sentence-pair student through the CLI ----------------------------------------------


def _pair_run(tmp_path, family="bert"):
    """A run folder of an RTE student (task and text fields in metadata.json) and RTE's
    dev.tsv/train.tsv with GLUE's own header."""
    model = _model(family)
    run = tmp_path / "rte_run"
    run.mkdir()
    model.save(run / runs.MODEL_FILE)
    (run / runs.METADATA_FILE).write_text(json.dumps(  # as `runs.save_run` records a run
        {"task": "rte", "text_fields": runs.text_fields("rte"), "label_names": ["entailment", "not_entailment"]}))
    first, second = testing.tiny_sentences(40, seed=5), testing.tiny_sentences(40, seed=6)
    data = tmp_path / "RTE"
    data.mkdir()
    for split in ("train", "dev"):
        rows = ["index\tsentence1\tsentence2\tlabel"]
        rows += [f"{i}\t{a}\t{b}\tentailment" for i, (a, b) in enumerate(zip(first, second))]
        (data / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return model, run, data, first, second


def test_cli_pair_task_serves_both_texts(tmp_path, capsys):
    model, run, data, first, second = _pair_run(tmp_path)
    out = tmp_path / "serving" / "rte"
    code = cli.main(["export", "--model", str(run), "--format", "saved_model", "--output", str(out),
                     "--data", str(data), "--num-verify", "40"])
    assert code == 0
    table = capsys.readouterr().out
    assert "serving_default" in table and "serve_token_ids" in table
    version = out / "1"
    metadata = json.loads(kt_export.metadata_path(version).read_text())
    assert metadata["raw_text_inputs"] == ["sentence1", "sentence2"]
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    assert sorted(serve.structured_input_signature[1]) == ["sentence1", "sentence2"]
    served = serve(sentence1=tf.constant(first), sentence2=tf.constant(second))["logits"].numpy()
    pairs = model.preprocessor(x=(tf.constant(first), tf.constant(second)))
    keras_pairs = np.asarray(model(pairs, training=False))
    alone = np.asarray(model(model.preprocessor(x=tf.constant(first)), training=False))
    np.testing.assert_allclose(served, keras_pairs, atol=1e-4)
    # the second sentence is really read: served predictions are not the first sentence's
    assert np.abs(served - alone).max() > 1e-1
    assert (served.argmax(-1) != alone.argmax(-1)).any()
    # and verify fed real pairs: Keras' pair predictions
    parity = kt_export.verify(version, model, {"sentence1": first, "sentence2": second})
    np.testing.assert_allclose(parity.keras_logits, keras_pairs, atol=1e-5)
