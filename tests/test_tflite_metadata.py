"""TFLite Model Metadata (`tflite_metadata.py`) and what `kt.export.tflite` writes with
it for on-device clients (`client_metadata.py`), read back from the exported files;
the length guard (`truncate_like_keras`) against keras-hub's packer. That MediaPipe
itself reads these files is `tests/test_mediapipe.py`.
"""

import io
import json
import warnings
import zipfile

import flatbuffers
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from flatbuffers import number_types

from keras_tinybert import testing
from keras_tinybert import export as kt_export
from keras_tinybert.export import client_metadata, litert, tflite_metadata
from keras_tinybert.export.parity import client_token_ids

WORDS = testing.REVIEW_WORDS
LABELS = ["negative", "positive"]


_sentences = testing.review_sentences


@pytest.fixture(scope="module")
def exported(student, tmp_path_factory):
    """{outputs: path} of float exports with each output layout."""
    folder = tmp_path_factory.mktemp("metadata")
    return {outputs: kt_export.tflite(student, folder / f"{outputs}.tflite", metadata={"label_names": LABELS},
                                      outputs=outputs)
            for outputs in ("probabilities", "logits", "both")}


# --- the format ----------------------------------------------------------------------

EVERY_KIND = {
    "name": "model", "description": "all field kinds", "version": "7", "author": "me",
    "min_parser_version": "1.1.0",
    "associated_files": [{"name": "readme.txt", "type": tflite_metadata.DESCRIPTIONS, "locale": "en"}],
    "subgraph_metadata": [{
        "name": "main",
        "input_tensor_metadata": [{
            "name": "ids", "dimension_names": ["batch", "token"],
            "content": {"content_properties": ("FeatureProperties", {}), "range": {"min": 1, "max": 2}},
        }],
        "output_tensor_metadata": [{
            "name": "probability", "stats": {"max": [1.0, 0.5], "min": [0.0, -0.25]},
            "associated_files": [{"name": "labels.txt", "type": tflite_metadata.TENSOR_AXIS_LABELS}],
        }],
        "input_process_units": [
            {"options": ("BertTokenizerOptions", {"vocab_file": [{"name": "vocab.txt", "type": tflite_metadata.VOCABULARY}]})},
            {"options": ("SentencePieceTokenizerOptions", {"sentencePiece_model": [{"name": "sp.model"}]})},
        ],
    }],
}


def test_build_then_parse_gives_every_field_back():
    buffer = tflite_metadata.build(EVERY_KIND)
    assert buffer[4:8] == b"M001"  # the schema's file_identifier
    assert tflite_metadata.parse(buffer) == EVERY_KIND


def test_union_type_values_follow_the_schema():
    """metadata_schema.fbs: ProcessUnit's first slot is `options_type`, and in union
    ProcessUnitOptions BertTokenizerOptions is member 4, SentencePieceTokenizerOptions 5;
    in ContentProperties FeatureProperties is 1. Read straight from the bytes."""
    buffer = tflite_metadata.build(EVERY_KIND)
    root = flatbuffers.table.Table(buffer, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buffer, 0))

    def child(tab, slot, index=None):
        offset = tab.Offset(4 + 2 * slot)
        if index is None:
            return flatbuffers.table.Table(buffer, tab.Indirect(offset + tab.Pos))
        return flatbuffers.table.Table(buffer, tab.Indirect(tab.Vector(offset) + 4 * index))

    def byte(tab, slot):
        return tab.Get(number_types.Uint8Flags, tab.Offset(4 + 2 * slot) + tab.Pos)

    subgraph = child(root, 3, 0)  # ModelMetadata.subgraph_metadata is its 4th field
    units = [child(subgraph, 5, i) for i in range(2)]  # input_process_units: 6th
    assert [byte(unit, 0) for unit in units] == [4, 5]
    content = child(child(subgraph, 2, 0), 3)  # input_tensor_metadata[0].content
    assert byte(content, 0) == 1


def test_parse_refuses_other_flatbuffers():
    with pytest.raises(ValueError, match="file identifier"):
        tflite_metadata.parse(b"\x08\x00\x00\x00TFL3\x00\x00\x00\x00")


def test_build_names_an_unknown_field():
    with pytest.raises(ValueError, match=r"TensorMetadata has no field\(s\) \['shape'\]"):
        tflite_metadata.build({"subgraph_metadata": [{"input_tensor_metadata": [{"shape": [1]}]}]})


# --- what kt.export.tflite writes ------------------------------------------------------


def test_exported_metadata_describes_inputs_tokenizer_and_labels(exported, student):
    from ai_edge_litert.interpreter import Interpreter

    content = exported["probabilities"].read_bytes()
    metadata, files = tflite_metadata.read(content)
    (subgraph,) = metadata["subgraph_metadata"]
    assert metadata["min_parser_version"] == "1.1.0"
    # Input roles, in the graph's input order; input i is tensor i (MediaPipe resizes
    # dynamic inputs by position), and the order is ids, segment ids, mask (the Task
    # Library reads them by position).
    assert [t["name"] for t in subgraph["input_tensor_metadata"]] == ["ids", "segment_ids", "mask"]
    details = Interpreter(model_content=content).get_input_details()
    assert [d["name"].split("_", 2)[-1].split(":")[0] for d in details] == ["token_ids", "segment_ids", "padding_mask"]
    assert [d["index"] for d in details] == [0, 1, 2]
    assert all(list(d["shape_signature"]) == [-1, -1] for d in details)
    # The tokenizer unit and its vocabulary, packed in the file.
    (unit,) = subgraph["input_process_units"]
    kind, options = unit["options"]
    assert kind == "BertTokenizerOptions"
    assert options["vocab_file"] == [{"name": "vocab.txt", "description": "WordPiece vocabulary, one token per line.",
                                      "type": tflite_metadata.VOCABULARY}]
    assert files["vocab.txt"].decode().splitlines() == student.preprocessor.tokenizer.get_vocabulary()
    # One output, probabilities, under the name the Task Library looks up, with labels.
    (output,) = subgraph["output_tensor_metadata"]
    assert output["name"] == "probability" and output["stats"] == {"max": [1.0], "min": [0.0]}
    assert output["associated_files"][0]["name"] == "labels.txt"
    assert output["associated_files"][0]["type"] == tflite_metadata.TENSOR_AXIS_LABELS
    assert files["labels.txt"].decode().splitlines() == LABELS
    # Clients read the associated files from an uncompressed zip appended to the model.
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert {i.filename: i.compress_type for i in archive.infolist()} == {
            "vocab.txt": zipfile.ZIP_STORED, "labels.txt": zipfile.ZIP_STORED}
    export_json = json.loads(kt_export.metadata_path(exported["probabilities"]).read_text())
    assert export_json["client_metadata"] is True and export_json["client_problems"] == []
    assert export_json["outputs"] == ["probabilities"] and export_json["max_input_length"] == 32


@pytest.mark.parametrize("outputs, names, roles", [
    ("logits", ["logits"], ["logits"]),
    ("both", ["logits", "probabilities"], ["logits", "probability"]),
])
def test_metadata_describes_every_output(exported, student, sentences, outputs, names, roles):
    from ai_edge_litert.interpreter import Interpreter

    metadata, _ = tflite_metadata.read(exported[outputs].read_bytes())
    described = metadata["subgraph_metadata"][0]["output_tensor_metadata"]
    assert [t["name"] for t in described] == roles
    assert all(t["associated_files"][0]["name"] == "labels.txt" for t in described)
    interpreter = Interpreter(model_path=str(exported[outputs]))
    graph_outputs = [d["name"] for d in interpreter.get_output_details()]  # in graph order
    assert len(graph_outputs) == len(names) and (graph_outputs[-1] == "probabilities") == ("probabilities" in names)
    ids = kt_export.token_ids(student.preprocessor, sentences[:4])
    result = interpreter.get_signature_runner("serving_default")(**ids)
    assert sorted(result) == sorted(names)
    logits = student(ids, training=False).numpy()
    np.testing.assert_allclose(result["logits"], logits, atol=1e-4)
    if "probabilities" in result:
        np.testing.assert_allclose(result["probabilities"], tf.nn.softmax(logits), atol=1e-6)


def test_metadata_does_not_change_what_the_file_computes(exported, student, sentences):
    parity = kt_export.verify(exported["probabilities"], student, sentences)
    assert parity.compared == "log_probabilities" and parity.max_abs_diff < 1e-4 and parity.agreement == 1.0
    # as a client feeds it: batch 1, untruncated, one text past the 64-position table
    assert parity.client_longest_input > 64
    assert parity.client_max_abs_diff < 1e-4 and parity.client_agreement == 1.0


def test_one_output_model_defaults_to_logits(tmp_path, sentences):
    regression = testing.tiny_classifier(num_classes=1)
    path = kt_export.tflite(regression, tmp_path / "stsb.tflite")
    assert json.loads(kt_export.metadata_path(path).read_text())["outputs"] == ["logits"]
    with pytest.raises(ValueError, match="softmax is always 1"):
        kt_export.tflite(regression, tmp_path / "x.tflite", outputs="probabilities")
    with pytest.raises(ValueError, match="Unknown outputs 'scores'"):
        kt_export.tflite(regression, tmp_path / "x.tflite", outputs="scores")


# --- students that clients would read differently ------------------------------------


def _export_warns(model, path, metadata=None):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kt_export.tflite(model, path, metadata=metadata)
    messages = [str(w.message) for w in caught if issubclass(w.category, kt_export.ClientMetadataWarning)]
    return messages, tflite_metadata.read(path.read_bytes())[0], json.loads(kt_export.metadata_path(path).read_text())


def test_cased_vocabulary_is_exported_without_client_metadata(tmp_path, sentences):
    cased = testing.tiny_classifier()
    cased.preprocessor.tokenizer.lowercase = False  # as a cased BERT's tokenizer
    (message,), metadata, export_json = _export_warns(cased, tmp_path / "cased.tflite")
    assert "case-sensitive" in message and "lower-cases ASCII" in message
    assert metadata is None  # the plain file: no TFLITE_METADATA, no zip
    assert export_json["client_metadata"] is False and "case-sensitive" in export_json["client_problems"][0]
    assert kt_export.verify(tmp_path / "cased.tflite", cased, sentences).max_abs_diff < 1e-4


def test_sentence_pair_task_is_exported_without_client_metadata(tmp_path, student):
    (message,), metadata, _ = _export_warns(student, tmp_path / "mnli.tflite", {"task": "mnli", "label_names": list("abc")[:2]})
    assert "mnli is a sentence-pair task" in message and metadata is None


def test_byte_level_bpe_has_no_client_tokenizer():
    vocabulary = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "a": 5, "\u0120film": 6, "\u0120": 7, "f": 8, "\u0120f": 9}
    tokenizer = keras_hub.models.RobertaTokenizer(vocabulary=vocabulary, merges=["\u0120 f"])
    preprocessor = keras_hub.models.RobertaTextClassifierPreprocessor(tokenizer, sequence_length=8)
    (problem,) = client_metadata.client_problems(preprocessor)
    assert "RobertaTokenizer" in problem and "byte-level BPE" in problem
    assert client_metadata.client_tokenizer(preprocessor) is None


def test_sentencepiece_students_carry_their_model(tmp_path, sentences):
    uncased = testing.vary_weights(testing.tiny_sentencepiece_classifier(sentences), sentences)
    path = kt_export.tflite(uncased, tmp_path / "albert.tflite", metadata={"label_names": LABELS})
    metadata, files = tflite_metadata.read(path.read_bytes())
    kind, options = metadata["subgraph_metadata"][0]["input_process_units"][0]["options"]
    assert kind == "SentencePieceTokenizerOptions"
    assert options["sentencePiece_model"][0]["name"] == "sentencepiece.model"
    assert files["sentencepiece.model"] == uncased.preprocessor.tokenizer.proto
    cased = testing.tiny_sentencepiece_classifier(sentences, case_folding=False)
    (problem,) = client_metadata.client_problems(cased.preprocessor)
    assert "case-sensitive" in problem


# --- the length guard ----------------------------------------------------------------


def test_truncation_matches_keras_packer(student):
    """Untruncated client ids, cut in the graph's way, are exactly what keras-hub's
    preprocessor packs (less its padding), whatever the length; padded batches too."""
    preprocessor = student.preprocessor
    texts = ["", "good", " ".join(WORDS[:20]), " ".join(WORDS * 3), " ".join(WORDS * 9)]
    packed = kt_export.token_ids(preprocessor, texts)
    feeds = client_token_ids(preprocessor, texts)
    assert [f["token_ids"].shape[1] for f in feeds][-1] > 64  # past the position table
    for i, feed in enumerate(feeds):
        cut = litert.truncate_like_keras({k: tf.constant(v) for k, v in feed.items()}, 32)
        length = int(packed["padding_mask"][i].sum())
        for name in feed:
            np.testing.assert_array_equal(cut[name].numpy()[0], packed[name][i][:length])
    # a batch padded at the end: each row keeps its own [SEP]
    width = max(f["token_ids"].shape[1] for f in feeds)
    batch = {name: np.stack([np.pad(f[name][0], (0, width - f[name].shape[1])) for f in feeds]) for name in feeds[0]}
    cut = litert.truncate_like_keras({k: tf.constant(v) for k, v in batch.items()}, 32)
    for name in batch:
        np.testing.assert_array_equal(cut[name].numpy(), packed[name])
