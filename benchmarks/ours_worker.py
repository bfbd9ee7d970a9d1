"""keras_tinybert's general-distillation step in a process of its own, timed in blocks
by distill_speed.py beside the in-process TensorFlow step: on another Keras backend
(KERAS_BACKEND=jax; a process runs one backend) or from another checkout of the
package (PYTHONPATH=<checkout>: the previous graph, for a same-run A/B).

One JSON command per line on stdin, one JSON reply per line on stdout:
    {"cmd": "setup", "case": "a", "jit_compile": true} -> {"backend", "keras_tinybert"}
    {"cmd": "steps", "n": 2}                            -> {"times": [seconds, ...]}
    {"cmd": "quit"}
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import distill_speed as bench  # noqa: E402  (keeps KERAS_BACKEND as set by the parent)


def main():
    distiller = data = None
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["cmd"] == "quit":
                print(json.dumps({"bye": True}), flush=True)
                break
            if command["cmd"] == "setup":
                distiller, data = bench.build_ours(bench.CASES[command["case"]],
                                                   jit_compile=command.get("jit_compile", False))
                reply = {"backend": bench.keras.backend.backend(),
                         "keras_tinybert": os.path.dirname(bench.kt.__file__)}
            else:
                reply = {"times": bench.run_ours(distiller, data, command["n"])[0]}
        except Exception as error:  # the parent prints it and stops
            reply = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
