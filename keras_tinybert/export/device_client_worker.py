"""An on-device text classifier behind a pipe: run by the client's virtual environment
(see `device_clients.py`) as `python device_client_worker.py mediapipe|task_library`;
standard library and the client's package only.

One JSON request per line on stdin, one JSON reply per line on stdout (the client's own
logging goes to stderr: fd 1 is moved there at start):

  {"op": "load", "path": "student.tflite"}             -> {"id": 0}
  {"op": "classify", "id": 0, "texts": ["...", ...]}    -> {"scores": [[...], ...], "labels": [...]}
      one row per text, one score per output index (the client's categories, put
      back in the output's order); labels: the category names in that order
  {"op": "time", "id": 0, "text": "...", "repeats": 20} -> {"ms": [...]}
      wall time of each `classify(text)` call: tokenisation, inference, results
  {"op": "version"}                                     -> {"version": "x.y.z"}

Any failure replies {"error": "Type: message"} and the worker keeps going.
"""

import importlib.metadata
import json
import os
import sys
import time

DISTRIBUTIONS = {"mediapipe": "mediapipe", "task_library": "tflite-support"}


def create(client, path):
    """A classifier with a `classify(text)` whose result has `.classifications[0].categories`."""
    if client == "mediapipe":
        from mediapipe.tasks.python.core.base_options import BaseOptions
        from mediapipe.tasks.python.text import TextClassifier, TextClassifierOptions

        options = TextClassifierOptions(base_options=BaseOptions(model_asset_path=path), max_results=-1)
        return TextClassifier.create_from_options(options)
    from tflite_support.task.text import BertNLClassifier

    return BertNLClassifier.create_from_file(path)


def main():
    client = sys.argv[1]
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything the client prints goes to stderr, never into the replies
    classifiers = []
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = handle(client, json.loads(line), classifiers)
        except Exception as error:  # noqa: BLE001 -- report every failure to the caller
            reply = {"error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")


def handle(client, request, classifiers):
    op = request["op"]
    if op == "version":
        return {"version": importlib.metadata.version(DISTRIBUTIONS[client])}
    if op == "load":
        classifiers.append(create(client, request["path"]))
        return {"id": len(classifiers) - 1}
    classifier = classifiers[request["id"]]
    if op == "classify":
        rows, labels = [], {}
        for text in request["texts"]:
            categories = classifier.classify(text).classifications[0].categories
            row = [0.0] * len(categories)
            for position, category in enumerate(categories):
                # MediaPipe sorts by score and sets `index`; the Task Library keeps the
                # output's order and leaves `index` 0.
                index = category.index if client == "mediapipe" else position
                row[index] = category.score
                labels[index] = category.category_name
            rows.append(row)
        return {"scores": rows, "labels": [labels[i] for i in sorted(labels)]}
    if op == "time":
        times = []
        for _ in range(request["repeats"]):
            start = time.perf_counter()
            classifier.classify(request["text"])
            times.append((time.perf_counter() - start) * 1e3)
        return {"ms": times}
    raise ValueError(f"unknown op {op!r}")


if __name__ == "__main__":
    main()
