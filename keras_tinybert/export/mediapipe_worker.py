"""MediaPipe Tasks' TextClassifier behind a pipe: run by the MediaPipe virtual
environment's python (see `mediapipe_client.py`), standard library and `mediapipe` only.

One JSON request per line on stdin, one JSON reply per line on stdout (MediaPipe's own
logging goes to stderr: fd 1 is moved there at start):

  {"op": "load", "path": "student.tflite"}             -> {"id": 0}
  {"op": "classify", "id": 0, "texts": ["...", ...]}    -> {"scores": [[...], ...], "labels": [...]}
      one row per text, one score per category index (MediaPipe's categories, put
      back in index order); labels: the category names by index
  {"op": "time", "id": 0, "text": "...", "repeats": 20} -> {"ms": [...]}
      wall time of each `classify(text)` call: tokenisation, inference, results
  {"op": "version"}                                     -> {"mediapipe": "x.y.z"}

Any failure replies {"error": "Type: message"} and the worker keeps going.
"""

import json
import os
import sys
import time


def main():
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything MediaPipe prints goes to stderr, never into the replies
    classifiers = []
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = handle(json.loads(line), classifiers)
        except Exception as error:  # noqa: BLE001 -- report every failure to the caller
            reply = {"error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")


def handle(request, classifiers):
    op = request["op"]
    if op == "version":
        import mediapipe

        return {"mediapipe": mediapipe.__version__}
    if op == "load":
        from mediapipe.tasks.python.core.base_options import BaseOptions
        from mediapipe.tasks.python.text import TextClassifier, TextClassifierOptions

        options = TextClassifierOptions(base_options=BaseOptions(model_asset_path=request["path"]), max_results=-1)
        classifiers.append(TextClassifier.create_from_options(options))
        return {"id": len(classifiers) - 1}
    classifier = classifiers[request["id"]]
    if op == "classify":
        rows, labels = [], {}
        for text in request["texts"]:
            categories = classifier.classify(text).classifications[0].categories
            row = [0.0] * len(categories)
            for category in categories:
                row[category.index] = category.score
                labels[category.index] = category.category_name
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
