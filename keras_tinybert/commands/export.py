"""`keras-tinybert export`: export a saved student, verify it against Keras, print a table.

    keras-tinybert export --model runs/sst2_student --format tflite --quantize int8 \\
        --data ../shared/data/sst2 --output saved_models/sst2_int8.tflite

`--model` is a `.keras` file or a directory with `student.keras` (+ `metadata.json`),
see `keras_tinybert/export/artifacts.py`. `--data` gives real sentences: a GLUE task
folder (its `train.tsv` calibrates int8, its `dev.tsv` verifies), a TSV with a
`sentence` column, or a text file with one sentence per line. Without `--data`, parity
is checked on random token ids and int8 is refused (it must be calibrated on text).

A `.tflite` carries TFLite Model Metadata, so that MediaPipe Tasks' TextClassifier
runs it on raw text, unless the student cannot be read that way (the command says
why); `--outputs` picks probabilities (default), logits or both.
"""

import csv
import json
import pathlib
import sys
import warnings

import numpy as np

FORMATS = ("saved_model", "tflite")
QUANTIZE = ("none", "dynamic", "float16", "int8")


def add_arguments(parser):
    parser.add_argument("--model", required=True, help="a .keras file or a directory holding student.keras")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--quantize", default="none", choices=QUANTIZE, help="TFLite only (default: none)")
    parser.add_argument(
        "--output", required=True,
        help="saved_model: <base>/<name>[/<version>] (next free version if omitted); tflite: a .tflite file",
    )
    parser.add_argument("--data", help="real sentences: GLUE task folder, TSV with a 'sentence' column, or text file")
    parser.add_argument("--num-calibration", type=int, default=500, help="int8 calibration sentences (default 500)")
    parser.add_argument("--num-verify", type=int, default=1000, help="sentences to verify on (default 1000)")
    parser.add_argument(
        "--outputs", choices=("probabilities", "logits", "both"), default=None,
        help="tflite: the output(s) of the file (default: probabilities, the one output MediaPipe's "
             "TextClassifier and the Task Library read; logits for a one-output model)",
    )


def run(args):
    from keras_tinybert import export

    if args.format == "saved_model" and args.quantize != "none":
        print("error: --quantize applies to --format tflite; a SavedModel is float32.", file=sys.stderr)
        return 2
    if args.quantize == "int8" and not args.data:
        print("error: --quantize int8 needs --data (real sentences to calibrate on).", file=sys.stderr)
        return 2
    if args.format == "saved_model" and args.outputs:
        print("error: --outputs applies to --format tflite; a SavedModel has both.", file=sys.stderr)
        return 2
    model, metadata = export.load_student(args.model)
    metadata = {**_run_task(args.model), **metadata}
    preprocessor = getattr(model, "preprocessor", None)
    calibration, verification = _sentences(args) if args.data else (None, None)
    if verification is not None and preprocessor is None:
        print("error: --data needs a model with a preprocessor (tokenizer) attached.", file=sys.stderr)
        return 2
    if verification is None:
        verification = _random_token_ids(model, args.num_verify)
    if args.format == "saved_model":
        artifact = export.saved_model(model, args.output, preprocessor=preprocessor, metadata=metadata)
        # serving_default takes raw text when there is a preprocessor: check it on text.
        text = preprocessor is None or not isinstance(verification, dict)
        signatures = ["serving_default", "serve_token_ids"] if text else ["serve_token_ids"]
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", export.ClientMetadataWarning)  # printed below
            artifact = export.tflite(
                model, args.output, quantization=args.quantize,
                representative_data=calibration, metadata=metadata, outputs=args.outputs,
            )
        signatures = [None]
    results = [export.verify(artifact, model, verification, signature=s) for s in signatures]
    print(format_table(results, args.quantize))
    print(f"metadata: {export.metadata_path(artifact)}")
    if args.format == "tflite":
        print(client_summary(json.loads(export.metadata_path(artifact).read_text())))
    return 0


def client_summary(export_metadata):
    """One line: whether the file runs on raw text in on-device clients, and why not."""
    if export_metadata["client_metadata"]:
        return ("client metadata: written (tokenizer, vocabulary, labels): MediaPipe's TextClassifier "
                "and the Task Library's BertNLClassifier run this file on raw text")
    return ("client metadata: NOT written, the file runs on token ids only: "
            + "; ".join(export_metadata["client_problems"]))


def _run_task(model_path):
    """{"task": ...} from a run's config.json beside the model, if it names one (a
    sentence-pair task cannot be MediaPipe-ready)."""
    path = pathlib.Path(model_path)
    config = (path if path.is_dir() else path.parent) / "config.json"
    try:
        task = json.loads(config.read_text()).get("task")
    except (OSError, ValueError, AttributeError):
        return {}
    return {"task": task} if isinstance(task, str) else {}


def format_table(results, quantization):
    """One row per verified signature: size, max abs diff, argmax agreement; for a
    `.tflite` also the same fed as an on-device client feeds it (batch 1, untruncated)."""
    rows = [("artifact", "signature", "quantization", "size MB", "max abs diff", "agreement", "n",
             "client max abs diff", "client agreement")]
    for r in results:
        client = ("-", "-") if r.client_agreement is None else (
            f"{r.client_max_abs_diff:.2e}", f"{r.client_agreement:.2%}")
        rows.append((r.artifact, r.signature, quantization, f"{r.size_mb:.2f}",
                     f"{r.max_abs_diff:.2e}", f"{r.agreement:.2%}", str(r.num_examples), *client))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _sentences(args):
    """(calibration, verification) sentences from --data; disjoint when one file serves both."""
    path = pathlib.Path(args.data)
    if path.is_dir():
        train, dev = path / "train.tsv", path / "dev.tsv"
        if not (train.exists() and dev.exists()):
            raise FileNotFoundError(f"{path} is a folder without train.tsv and dev.tsv (GLUE layout).")
        return read_sentences(train)[: args.num_calibration], read_sentences(dev)[: args.num_verify]
    sentences = read_sentences(path)
    return sentences[: args.num_calibration], sentences[args.num_calibration :][: args.num_verify] or sentences


def read_sentences(path):
    """Sentences from a TSV with a `sentence` (or `text`) header column, or one per line."""
    path = pathlib.Path(path)
    with path.open(encoding="utf-8", newline="") as f:
        first = f.readline()
        header = first.rstrip("\r\n").split("\t")
        column = next((i for i, name in enumerate(header) if name in ("sentence", "text")), None)
        if column is None:
            return [line.strip() for line in [first, *f] if line.strip()]
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row[column] for row in reader if len(row) > column]


def _random_token_ids(model, count, length=None):
    """Random non-special token ids, fully unpadded: a fallback when no text is given."""
    rng = np.random.default_rng(0)
    vocabulary_size = model.backbone.vocabulary_size
    preprocessor = getattr(model, "preprocessor", None)
    length = length or getattr(preprocessor, "sequence_length", None) or 128
    return {
        "token_ids": rng.integers(5, vocabulary_size, size=(count, length), dtype="int32"),
        "segment_ids": np.zeros((count, length), "int32"),
        "padding_mask": np.ones((count, length), "int32"),
    }
