"""Where a general-distillation step's time goes, per TensorFlow op type.

    python benchmarks/op_profile.py [--case a] [--repeats 3] [--inter-op 1]

Traces `repeats` train steps of the distiller of `distill_speed.py` (case a:
BERT-base → TinyBERT4, seq 128; case b: 6L-384H → 2L-128H, seq 64) with
TensorFlow's profiler and sums the time of every executed op by type, per step.
With `--inter-op 1` (the default here) ops run one at a time, so the times add up
to the step's wall time; with TensorFlow's default several ops overlap and each
looks slower than it is. The last lines split the step into matrix products
(MatMul, BatchMatMul and their fused forms) and everything else: the part that
engineering can still shrink once the products run at the machine's peak.
"""

import argparse
import collections
import glob
import os
import shutil
import statistics
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from distill_speed import CASES, build_ours  # noqa: E402

MATMUL_OPS = ("MatMul", "BatchMatMul", "Einsum")


def op_times(fn, x, repeats):
    """{op type: seconds per call} from a profiler trace of `repeats` calls."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    logdir = tempfile.mkdtemp(prefix="op_profile_")
    try:
        tf.profiler.experimental.start(logdir)
        for _ in range(repeats):
            tf.nest.map_structure(lambda t: t.numpy(), fn(x))
        tf.profiler.experimental.stop()
        (path,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    seconds = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                # Executed ops are named "<op name>:<op type>".
                if ":" in name and not name.startswith(("$", "__")):
                    op_type = name.rsplit(":", 1)[-1].split("#")[0].strip()
                    if op_type.lstrip("_")[:1].isupper():  # _MklMatMul, Mul, ...
                        seconds[op_type] += event.duration_ps * 1e-12 / repeats
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=sorted(CASES), default="a")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--inter-op", type=int, default=1,
                        help="TensorFlow inter-op threads (0: TensorFlow's default)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    distiller, data = build_ours(CASES[args.case])
    x = next(iter(data))
    step = tf.function(distiller.train_step)
    tf.nest.map_structure(lambda t: t.numpy(), step(x))  # trace + warm up
    walls = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), step(x))
        walls.append(time.perf_counter() - start)
    wall = statistics.median(walls)
    seconds = op_times(step, x, args.repeats)
    for skip in ("Run", "Process"):  # the executor's own spans, not ops
        seconds.pop(skip, None)
    total = sum(seconds.values())
    print(f"case {args.case}: step {wall:.3f} s wall, ops {total:.3f} s "
          f"(inter-op threads: {args.inter_op or 'default'})")
    for name, s in seconds.most_common(args.top):
        print(f"  {name:32} {s * 1e3:9.1f} ms  {s / total:6.1%}")
    matmul = sum(s for n, s in seconds.items() if any(m in n for m in MATMUL_OPS))
    print(f"matrix products {matmul:.3f} s ({matmul / total:.1%}), "
          f"everything else {total - matmul:.3f} s ({(total - matmul) / total:.1%})")


if __name__ == "__main__":
    main()
