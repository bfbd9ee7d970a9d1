"""`keras-tinybert export`: export a saved student, verify it against Keras, print a table.

    keras-tinybert export --model runs/sst2_student --format tflite --quantize int8 \\
        --data ../shared/data/sst2 --output saved_models/sst2_int8.tflite

`--model` is a `.keras` file or a directory with `student.keras` (+ `metadata.json`),
see `keras_tinybert/export/artifacts.py`. `--data` gives real sentences: a GLUE task
folder (its `train.tsv` calibrates int8, its `dev.tsv` verifies), a TSV with a
`sentence` column, or a text file with one sentence per line. Without `--data`, parity
is checked on random token ids and int8 is refused (it must be calibrated on text).

A student of a sentence-pair task (the run's metadata.json names its "task" and
"text_fields", e.g. MNLI's premise/hypothesis) gets a raw-text SavedModel signature
with one string input per field, and is verified on real pairs read from the task's
TSV columns.

A `.tflite` carries TFLite Model Metadata, so that MediaPipe Tasks' TextClassifier
runs it on raw text, unless the student cannot be read that way (the command says
why); `--outputs` picks probabilities (default), logits or both.
"""

import csv
import functools
import json
import pathlib
import warnings


# Exports are TensorFlow graphs: `cli.main` runs this command on Keras' TensorFlow
# backend whatever KERAS_BACKEND says (a .keras file trained on JAX loads there).
BACKEND = "tensorflow"
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
    from keras_tinybert.export.artifacts import is_token_ids, text_fields
    from keras_tinybert.export.parity import random_token_ids

    if args.format == "saved_model" and args.quantize != "none":
        raise SystemExit("--quantize applies to --format tflite; a SavedModel is float32.")
    if args.quantize == "int8" and not args.data:
        raise SystemExit("--quantize int8 needs --data (real sentences to calibrate on).")
    if args.format == "saved_model" and args.outputs:
        raise SystemExit("--outputs applies to --format tflite; a SavedModel has both.")
    model, metadata = export.load_student(args.model)
    metadata = {**_run_task(args.model), **metadata}  # runs.read_metadata: task, text_fields
    text_inputs = text_fields(metadata)  # a pair task is served and verified with both texts
    preprocessor = getattr(model, "preprocessor", None)
    calibration, verification = _sentences(args, metadata) if args.data else (None, None)
    if verification is not None and preprocessor is None:
        raise SystemExit("--data needs a model with a preprocessor (tokenizer) attached.")
    if verification is None:
        verification = random_token_ids(model, args.num_verify)
    if args.format == "saved_model":
        artifact = export.saved_model(model, args.output, preprocessor=preprocessor, metadata=metadata,
                                      text_inputs=text_inputs)
        # serving_default takes raw text when there is a preprocessor: check it on text
        # (both sentences of a pair task).
        text = preprocessor is None or not is_token_ids(verification)
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


def _sentences(args, metadata=None):
    """(calibration, verification) sentences from --data; disjoint when one file serves
    both. For a sentence-pair task, dicts of the task's text columns (real pairs)."""
    from keras_tinybert.export.artifacts import text_fields

    path = pathlib.Path(args.data)
    read = functools.partial(read_sentences, fields=text_fields(metadata), tsv_columns=_tsv_columns(metadata))
    if path.is_dir():
        train, dev = path / "train.tsv", path / "dev.tsv"
        if not (train.exists() and dev.exists()):
            raise FileNotFoundError(f"{path} is a folder without train.tsv and dev.tsv (GLUE layout).")
        return _head(read(train), args.num_calibration), _head(read(dev), args.num_verify)
    sentences = read(path)
    count = len(next(iter(sentences.values()))) if isinstance(sentences, dict) else len(sentences)
    rest = _head(sentences, args.num_verify, start=args.num_calibration)
    return (_head(sentences, args.num_calibration),
            rest if count > args.num_calibration else sentences)


def _head(sentences, count, start=0):
    """The sentences (or each column of pairs) from `start`, at most `count`."""
    if isinstance(sentences, dict):
        return {name: column[start : start + count] for name, column in sentences.items()}
    return sentences[start : start + count]


def _tsv_columns(metadata):
    """The GLUE TSV header names of the run's task's text fields, if it names a GLUE task."""
    task = (metadata or {}).get("task")
    if not task:
        return None
    from keras_tinybert.data.tasks import get_task

    try:
        return tuple(get_task(task).tsv_text)
    except ValueError:
        return None


def read_sentences(path, fields=("text",), tsv_columns=None):
    """Sentences from a TSV with a `sentence` (or `text`) header column, or one per line.

    For two `fields` (a sentence-pair task), {field: [...]} read from the TSV columns
    named `tsv_columns` (the task's GLUE headers) or named as the fields themselves.
    """
    path = pathlib.Path(path)
    if len(fields) == 2:
        return _read_pairs(path, fields, tsv_columns or fields)
    with path.open(encoding="utf-8", newline="") as f:
        first = f.readline()
        header = first.rstrip("\r\n").split("\t")
        column = next((i for i, name in enumerate(header) if name in ("sentence", "text")), None)
        if column is None:
            return [line.strip() for line in [first, *f] if line.strip()]
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row[column] for row in reader if len(row) > column]


def _read_pairs(path, fields, columns):
    """{field: [...]} from the TSV header columns `columns` (in `fields` order)."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, [])
        for names in (columns, fields):
            if all(name in header for name in names):
                index = [header.index(name) for name in names]
                break
        else:
            raise ValueError(
                f"{path}: the student was trained on a sentence-pair task ({'/'.join(fields)}), but the "
                f"TSV header {header} has no columns {list(columns)}; pass the task's own TSV (GLUE layout).")
        rows = [row for row in reader if len(row) > max(index)]
    return {field: [row[i] for row in rows] for field, i in zip(fields, index)}
