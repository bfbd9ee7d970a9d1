"""SST-2 dev accuracy of a student through MediaPipe Tasks' TextClassifier, on raw text.

    python benchmarks/mediapipe_sst2.py --model runs/main-.../distill-prediction-... \\
        [--data ../shared/data/sst2] [--quantize dynamic] [--output student.tflite]

Exports the student (`kt.export.tflite`, int8 calibrated on 500 training sentences),
then classifies the dev sentences three ways and prints the accuracies:
  Keras      `model.predict` on the raw sentences (keras-hub's tokenizer, truncation);
  MediaPipe  `TextClassifier.classify(sentence)`, one at a time, in MediaPipe's own
             virtual environment (its tokenizer, its LiteRT runtime), as an app runs it;
  LiteRT     the same file in ai-edge-litert, fed as a client feeds it (batch 1,
             untruncated keras-hub ids).
and how often MediaPipe's class is Keras' and LiteRT's.
"""

import argparse
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keras_tinybert import export as kt_export  # noqa: E402
from keras_tinybert.commands.export import read_sentences  # noqa: E402
from keras_tinybert.export.device_clients import TextClassifierClient  # noqa: E402
from keras_tinybert.export.parity import client_token_ids, tflite_predictor  # noqa: E402


def labelled(path):
    """(sentences, labels) of a GLUE SST-2 TSV."""
    lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()[1:]
    rows = [line.split("\t") for line in lines if line.strip()]
    return [row[0] for row in rows], np.array([int(row[1]) for row in rows])


def main(args):
    model, metadata = kt_export.load_student(args.model)
    data = pathlib.Path(args.data)
    sentences, labels = labelled(data / "dev.tsv")
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(args.output or pathlib.Path(tmp) / f"student_{args.quantize}.tflite")
        kt_export.tflite(model, path, quantization=args.quantize, metadata=metadata,
                         representative_data=read_sentences(data / "train.tsv")[:500])
        keras_class = model.predict(sentences, batch_size=64, verbose=0).argmax(-1)
        with TextClassifierClient() as client:
            scores, names = client.classify(client.load(path), sentences)
        predict = tflite_predictor(path, trim_padding=False)
        litert_class = np.array([predict(feed)[0].argmax() for feed in client_token_ids(model.preprocessor, sentences)])
    mediapipe_class = scores.argmax(-1)
    print(f"{len(sentences)} SST-2 dev sentences, {args.quantize} TFLite ({path.name}), MediaPipe {client.version}, "
          f"labels {names}")
    for name, predicted in (("Keras", keras_class), ("MediaPipe", mediapipe_class), ("LiteRT", litert_class)):
        print(f"  {name:10s} accuracy {np.mean(predicted == labels):.2%}")
    print(f"  MediaPipe agrees with Keras on {np.mean(mediapipe_class == keras_class):.2%}, "
          f"with LiteRT on {np.mean(mediapipe_class == litert_class):.2%}")
    gap = abs(np.mean(mediapipe_class == labels) - np.mean(keras_class == labels)) * 100
    print(f"  |MediaPipe - Keras| accuracy: {gap:.2f} points")
    return 0 if gap <= 0.5 else 1


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a student directory or .keras file")
    parser.add_argument("--data", default=os.path.join(os.environ.get("KT_DATA_DIR", "../shared/data"), "sst2"),
                        help="the SST-2 folder (train.tsv, dev.tsv)")
    parser.add_argument("--quantize", default="dynamic", choices=("none", "dynamic", "float16", "int8"))
    parser.add_argument("--output", help="keep the .tflite here (default: a temporary file)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main(parse_args()))
