"""`keras-tinybert evaluate`: GLUE metric, size and CPU latency of a model or run.

    keras-tinybert evaluate --model runs/distill-prediction-... --task sst2 \\
        --data-dir ../shared/data/sst2 --seq-len 128 --latency --export-sizes \\
        --json results/student.json

Prints the task's dev metric(s), the total and encoder (Transformer-block) parameter
counts, with `--latency` the median Keras CPU latency in ms at batch 1 and batch 32
(on random token ids of `--seq-len`, after warm-up calls), and with `--export-sizes`
the MB of a float32 SavedModel and of an int8 TFLite file exported to a temporary
folder. `keras_tinybert.evaluation.evaluate_model` returns the same numbers as a dict
(scripts/results.py tabulates them in docs/RESULTS.md).
"""

import json
import pathlib


def add_arguments(parser):
    parser.add_argument("--model", required=True,
                        help="a run directory (student.keras / model.keras) or a .keras file")
    parser.add_argument("--task", default="sst2", help="GLUE task (default sst2)")
    parser.add_argument("--data-dir", help="local GLUE folder; default: TFDS")
    parser.add_argument("--seq-len", type=int, default=128,
                        help="tokens per example for evaluation and latency (default 128)")
    parser.add_argument("--latency", action="store_true",
                        help="median Keras CPU latency at batch 1 and 32")
    parser.add_argument("--export-sizes", action="store_true",
                        help="MB of a float SavedModel and an int8 TFLite export")
    parser.add_argument("--json", help="also write the results to this JSON file")


def run(args):
    from keras_tinybert.evaluation import evaluate_model

    result = evaluate_model(args.model, args.task, args.data_dir, args.seq_len,
                            latency=args.latency, export_sizes=args.export_sizes)
    print(format_result(result))
    if args.json:
        path = pathlib.Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


def format_result(result):
    """The result as aligned `name: value` lines."""
    lines = [f"model: {result['model']} ({result['shape']})",
             f"task: {result['task']} (dev)"]
    lines += [f"{name}: {value:.4f}" for name, value in result["metrics"].items()]
    lines += [f"parameters: {result['parameters']:,}",
              f"encoder_parameters: {result['encoder_parameters']:,}"]
    for key in ("latency_ms_batch1", "latency_ms_batch32"):
        if key in result:
            lines.append(f"{key}: {result[key]:.2f} (seq_len {result['seq_len']})")
    for key in ("saved_model_mb", "tflite_int8_mb"):
        if key in result:
            lines.append(f"{key}: {result[key]:.2f}")
    return "\n".join(lines)
