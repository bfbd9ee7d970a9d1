"""Where a general-distillation step's time goes (cases of distill_speed.py).

    python benchmarks/step_breakdown.py [--case a] [--batch-size 32] [--repeats 3]

Times, each in its own tf.function and reduced to a scalar so that no output is
copied out: the teacher's forward through `Taps` (embedding, every block's output and
pre-softmax scores), the same teacher's plain keras-hub forward (what the taps cost on
top), the student's forward with and without dropout and its forward+backward, and a
whole `fit` step (losses, optimizer). Case a: BERT-base teacher (12L-768H), TinyBERT4
student (4L-312H), seq 128; case b: 6L-384H teacher, 2L-128H student, seq 64.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from distill_speed import CASES, build_ours, run_ours  # noqa: E402


def median_seconds(fn, x, repeats):
    fn(x).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x).numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def total(tensors):
    return tf.add_n([tf.reduce_sum(tf.cast(t, tf.float32)) for t in tf.nest.flatten(tensors)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=sorted(CASES), default="a")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--teacher-precision", default="float32")
    args = parser.parse_args()
    case = {**CASES[args.case], "batch_size": args.batch_size}
    distiller, data = build_ours(case, teacher_precision=args.teacher_precision)
    x = next(iter(data))
    teacher, student_taps = distiller.teacher, distiller.student_taps

    def student_backward(x):
        variables = distiller.student.trainable_variables
        with tf.GradientTape() as tape:
            loss = total(student_taps(x, training=True)["hidden"])
        return total([g for g in tape.gradient(loss, variables) if g is not None])

    parts = {
        "teacher forward, taps": tf.function(lambda x: total(distiller._teacher_forward(x)[0])),
        "teacher forward, keras-hub": tf.function(
            lambda x: total(teacher(x, training=False)["sequence_output"])),
        "student forward (training)": tf.function(
            lambda x: total(student_taps(x, training=True)["hidden"][-1])),
        "student forward (inference)": tf.function(
            lambda x: total(student_taps(x, training=False)["hidden"][-1])),
        "student forward + backward": tf.function(student_backward),
    }
    for name, fn in parts.items():
        print(f"{name:30} {median_seconds(fn, x, args.repeats):7.3f} s", flush=True)
    run_ours(distiller, data, 1)
    step = statistics.median(run_ours(distiller, data, args.repeats)[0])
    print(f"{'whole step (fit, per batch)':30} {step:7.3f} s")


if __name__ == "__main__":
    keras.utils.set_random_seed(0)
    np.random.seed(0)
    main()
