"""What on-device text clients need from a student's `.tflite`, whether a student can
give it, and the TFLite Model Metadata that tells them.

MediaPipe Tasks' `TextClassifier` (Android, iOS, web, Python: one C++ core) and the
TFLite Task Library's `BertNLClassifier` run a BERT classifier on raw text when its
metadata names the three int32 inputs by role (`ids`, `segment_ids`, `mask`), carries
the tokenizer as an input process unit with its vocabulary (or SentencePiece model)
packed into the file, and describes each float32 [1, num_classes] output, with the
label names as a TENSOR_AXIS_LABELS file. Their tokenisation is fixed: lower-case the
ASCII letters, split into WordPiece (or SentencePiece) pieces, wrap them as
`[CLS] pieces [SEP]`, one segment, segment ids all 0. `client_problems` lists what,
in a student, would make that differ from its Keras preprocessor; such a student is
exported without client metadata.
"""

import dataclasses
import re

import numpy as np

from keras_tinybert.export import tflite_metadata as fmt

# The graph's inputs, in the order the TFLite Task Library reads them by position
# (ids, segment ids, mask); MediaPipe finds them by the metadata names.
INPUT_ORDER = ("token_ids", "segment_ids", "padding_mask")
INPUT_ROLES = {"token_ids": "ids", "segment_ids": "segment_ids", "padding_mask": "mask"}
# The Task Library's BertNLClassifier looks its scores up under "probability".
OUTPUT_ROLES = {"probabilities": "probability", "logits": "logits"}
LABELS_FILE = "labels.txt"
VOCABULARY_FILE = "vocab.txt"
SENTENCEPIECE_FILE = "sentencepiece.model"
# The tokens MediaPipe and the Task Library wrap every text in, by name.
CLIENT_SPECIAL_TOKENS = ("[CLS]", "[SEP]")
CLIENT_UNKNOWN_TOKEN = "[UNK]"  # their WordPiece's out-of-vocabulary token


@dataclasses.dataclass
class ClientTokenizer:
    """The tokenizer unit a client runs: "wordpiece" or "sentencepiece", and its file."""

    kind: str
    file_name: str
    content: bytes


def client_tokenizer(preprocessor):
    """The `ClientTokenizer` of a keras-hub preprocessor, or None when no client
    tokenizer unit exists for its tokenizer (e.g. byte-level BPE)."""
    from keras_hub.src.tokenizers.sentence_piece_tokenizer import SentencePieceTokenizer
    from keras_hub.src.tokenizers.word_piece_tokenizer import WordPieceTokenizer

    tokenizer = getattr(preprocessor, "tokenizer", None)
    if isinstance(tokenizer, WordPieceTokenizer):
        vocabulary = "\n".join(tokenizer.get_vocabulary()) + "\n"
        return ClientTokenizer("wordpiece", VOCABULARY_FILE, vocabulary.encode("utf-8"))
    if isinstance(tokenizer, SentencePieceTokenizer):
        return ClientTokenizer("sentencepiece", SENTENCEPIECE_FILE, bytes(tokenizer.proto))
    return None


def client_problems(preprocessor, source=None):
    """Why MediaPipe's `TextClassifier` would not read text as the Keras preprocessor
    does ([] when it would). `source` is the student's metadata (its `task`, or
    `text_inputs`, tells a sentence-pair task)."""
    source = source or {}
    tokenizer = getattr(preprocessor, "tokenizer", None)
    if tokenizer is None:
        return ["the model has no preprocessor: a client has no tokenizer or vocabulary to run "
                "(pass `preprocessor=`, a keras-hub TextClassifierPreprocessor)"]
    problems = []
    if client_tokenizer(preprocessor) is None:
        problems.append(
            f"its tokenizer ({type(tokenizer).__name__}) is neither WordPiece nor SentencePiece "
            "(byte-level BPE?): MediaPipe and the Task Library have no tokenizer unit for it, so "
            "the app must tokenise and feed token ids itself")
    else:
        problems += _special_token_problems(preprocessor)
        if _case_sensitive(tokenizer):
            problems.append(
                "its tokenizer is case-sensitive (a cased vocabulary, or lowercase=False): "
                "MediaPipe lower-cases ASCII letters before tokenising, so 'The' would be read as 'the'")
    pair = _pair_task(source)
    if pair:
        problems.append(f"{pair} is a sentence-pair task: MediaPipe feeds one segment, so the "
                        "second sentence has nowhere to go")
    return problems


def _special_token_problems(preprocessor):
    tokenizer = preprocessor.tokenizer
    vocabulary = tokenizer.get_vocabulary()
    index = {token: i for i, token in enumerate(vocabulary)}
    missing = [t for t in CLIENT_SPECIAL_TOKENS if t not in index]
    if missing:
        return [f"its vocabulary has no {', '.join(missing)}: MediaPipe wraps every text in "
                "[CLS] ... [SEP], looked up by name"]
    problems = []
    start, end = wrapping_ids(preprocessor)
    if (start, end) != (index["[CLS]"], index["[SEP]"]):
        problems.append(
            f"its preprocessor wraps text in ids {start} ... {end}, not [CLS] ... [SEP] "
            f"({index['[CLS]']} ... {index['[SEP]']}) as MediaPipe does")
    oov = getattr(tokenizer, "oov_token", None)
    if client_tokenizer(preprocessor).kind == "wordpiece" and oov != CLIENT_UNKNOWN_TOKEN:
        problems.append(f"its WordPiece unknown token is {oov!r}; MediaPipe's is '[UNK]'")
    return problems


def wrapping_ids(preprocessor):
    """The ids the preprocessor puts before and after a single segment."""
    packed = preprocessor([""])
    ids = np.asarray(packed["token_ids"])[0]
    if "padding_mask" in packed:
        real = ids[np.asarray(packed["padding_mask"]).astype(bool)[0]]
    else:  # F-Net, RoFormerV2: no mask; padding is the pad id
        real = ids[ids != preprocessor.tokenizer.pad_token_id]
    return int(real[0]), int(real[-1])


def _case_sensitive(tokenizer, count=200):
    """Whether capitalising ASCII words changes the token ids: tried on up to `count`
    lower-case ASCII words of the vocabulary itself."""
    words = []
    for token in tokenizer.get_vocabulary():
        word = token.lstrip("\u2581")  # SentencePiece's word-start mark
        if word.isascii() and word.isalpha() and word.islower() and not token.startswith("##"):
            words.append(word)
        if len(words) == count:
            break
    if not words:
        return False
    lower = " ".join(words)
    upper = " ".join(w.capitalize() for w in words)
    ids = [np.asarray(tokenizer([text])).ravel().tolist() for text in (lower, upper)]
    return ids[0] != ids[1]


def _pair_task(source):
    """The name of the sentence-pair task `source` says the student was trained on."""
    text_inputs = source.get("text_inputs") or source.get("raw_text_inputs")
    if text_inputs and len(text_inputs) == 2:
        return "the student's text_inputs " + "/".join(text_inputs)
    task = source.get("task")
    if task:
        from keras_tinybert.data.tasks import get_task

        try:
            if get_task(task).is_pair:
                return str(task)
        except ValueError:  # not a GLUE task: nothing known about its inputs
            pass
    return None


def model_metadata(tokenizer, label_names, outputs, sequence_length, description=""):
    """`(metadata dict, {file name: bytes})` for a BERT text classifier whose graph takes
    `INPUT_ORDER` and has `outputs` ("probabilities" and/or "logits", in graph order)."""
    labels = {"name": LABELS_FILE, "description": "The label of each output score, in order.",
              "type": fmt.TENSOR_AXIS_LABELS}
    feature = {"content_properties": ("FeatureProperties", {})}
    length = f"at most {sequence_length} ids: longer inputs are cut in the graph as Keras cuts them " \
             f"([CLS], the first {sequence_length - 2} pieces, [SEP])" if sequence_length else "any length"
    inputs = {
        "token_ids": f"Token ids of [CLS] text [SEP], int32 [1, n], {length}.",
        "segment_ids": "Segment ids: 0 for every token of the single text, int32 [1, n].",
        "padding_mask": "Mask: 1 for a real token, 0 for padding, int32 [1, n].",
    }
    output_descriptions = {
        "probabilities": "Class probabilities (softmax of the logits), float32 [1, num_classes].",
        "logits": "Class logits (unnormalised scores), float32 [1, num_classes].",
    }
    outputs_metadata = []
    for name in outputs:
        entry = {"name": OUTPUT_ROLES[name], "description": output_descriptions[name],
                 "content": feature, "associated_files": [labels]}
        if name == "probabilities":
            entry["stats"] = {"max": [1.0], "min": [0.0]}
        outputs_metadata.append(entry)
    if tokenizer.kind == "wordpiece":
        unit = ("BertTokenizerOptions", {"vocab_file": [
            {"name": tokenizer.file_name, "description": "WordPiece vocabulary, one token per line.",
             "type": fmt.VOCABULARY}]})
    else:
        unit = ("SentencePieceTokenizerOptions", {"sentencePiece_model": [
            {"name": tokenizer.file_name, "description": "SentencePiece model."}]})
    metadata = {
        "name": "keras-tinybert text classifier",
        "description": description,
        "author": "keras-tinybert",
        "subgraph_metadata": [{
            "input_tensor_metadata": [
                {"name": INPUT_ROLES[name], "description": inputs[name], "content": feature}
                for name in INPUT_ORDER
            ],
            "output_tensor_metadata": outputs_metadata,
            "input_process_units": [{"options": unit}],
        }],
        "min_parser_version": fmt.MIN_PARSER_VERSION,
    }
    files = {tokenizer.file_name: tokenizer.content, LABELS_FILE: label_file(label_names)}
    return metadata, files


def label_file(label_names):
    """One label per line (a label's own line breaks become spaces)."""
    return ("\n".join(re.sub(r"\s*[\r\n]+\s*", " ", str(name)) for name in label_names) + "\n").encode("utf-8")
