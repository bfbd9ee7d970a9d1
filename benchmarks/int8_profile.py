"""Where the int8 TinyBERT4 TFLite spends its time, op by op, and what XNNPACK runs.

    python benchmarks/int8_profile.py [--data ../shared/data] [--threads 1] [--repeats 30]

The LiteRT Python API has no per-op profiler, so every op of the graph is cut out into
a one-op `.tflite` (its constant inputs kept, the others fed the values they take in the
full model at batch 1, seq 128) and timed twice: with LiteRT's default XNNPACK delegate
and with LiteRT's own kernels only. Which kernel the full model really uses comes from
`xnnpack_coverage` (XNNPACK declines ops it does not support, and reshapes whose shape is
computed at run time). The "as run" column adds each op's time on the kernel it gets; it
leaves out the cost of switching between XNNPACK partitions, so it is a little under the
whole-model time printed next to it.

Three exports of the same TinyBERT4-shaped student as `benchmarks/latency.py` (random
weights, real vocabulary when installed, int8 calibrated on the same data):
  dynamic         int8 weights, float activations
  int8 converter  full-integer, straight from the TFLite converter
  int8            full-integer after `xnnpack_int8_rewrites` (what `tflite()` writes)
"""

import argparse
import collections
import copy
import os
import pathlib
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from latency import build_teacher, calibration_data, random_inputs  # noqa: E402

from keras_tinybert import export as kt_export  # noqa: E402
from keras_tinybert import models  # noqa: E402
from keras_tinybert.export import litert  # noqa: E402
from keras_tinybert.export.parity import xnnpack_coverage, xnnpack_delegated_ops  # noqa: E402


def exports(out, data_dir):
    """{name: path} of the three student exports compared."""
    teacher = build_teacher()
    student = models.tinybert4_like(teacher)
    calibration, note = calibration_data(teacher, data_dir)
    print(f"student {student.count_params() / 1e6:.1f} M params; int8 calibrated on {note}", flush=True)
    paths = {"dynamic": kt_export.tflite(student, out / "dynamic.tflite", quantization="dynamic")}
    raw = out / "int8_converter.tflite"
    raw.write_bytes(litert.convert(student, "int8", litert._calibration_inputs(student, calibration, None)))
    paths["int8 converter"] = raw
    paths["int8"] = kt_export.tflite(student, out / "int8.tflite", quantization="int8", representative_data=calibration)
    return paths


def interpreter(path_or_content, threads, xnnpack=True, **kwargs):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    source = {"model_content": path_or_content} if isinstance(path_or_content, bytes) else {"model_path": str(path_or_content)}
    if not xnnpack:
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return Interpreter(num_threads=threads, **source, **kwargs)


def tensor_values(path, inputs):
    """{tensor index: value} of every tensor of the model run once on `inputs`."""
    full = interpreter(path, 1, xnnpack=False, experimental_preserve_all_tensors=True)
    full.get_signature_runner("serving_default")(**inputs)
    values = {}
    for detail in full.get_tensor_details():
        try:
            values[detail["index"]] = full.get_tensor(detail["index"])
        except ValueError:  # never written (e.g. an unused optional input)
            pass
    return values


def one_op_model(model, op, values):
    """(flatbuffer bytes, [input values]) of a model that runs `op` alone."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    source = model.subgraphs[0]
    single = schema.ModelT()
    single.version, single.operatorCodes, single.buffers = model.version, model.operatorCodes, [schema.BufferT()]
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, feeds, index = [], [], [], {}

    def add(tensor_index, is_output):
        if tensor_index not in index:
            tensor = copy.copy(source.tensors[tensor_index])
            buffer = model.buffers[tensor.buffer]
            constant = not is_output and buffer.data is not None and len(buffer.data) > 0
            single.buffers.append(buffer if constant else schema.BufferT())
            tensor.buffer = len(single.buffers) - 1
            if not constant:
                tensor.shape = np.asarray(values[tensor_index].shape, np.int32)
                tensor.shapeSignature = None
            graph.tensors.append(tensor)
            index[tensor_index] = len(graph.tensors) - 1
            if not constant and not is_output:
                graph.inputs.append(index[tensor_index])
                feeds.append(values[tensor_index])
        return index[tensor_index]

    alone = copy.copy(op)
    alone.inputs = [add(t, False) if t >= 0 else -1 for t in op.inputs]
    alone.outputs = [add(t, True) for t in op.outputs]
    graph.outputs, graph.operators = list(alone.outputs), [alone]
    single.subgraphs, single.signatureDefs = [graph], []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(single)), feeds


def time_invoke(runner, repeats):
    runner.invoke()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner.invoke()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def profile(path, inputs, threads, repeats):
    """[(op name, input dtype, ms with XNNPACK, ms with LiteRT's kernels, XNNPACK in the full model)]."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(pathlib.Path(path).read_bytes()))
    values = tensor_values(path, inputs)
    details, taken = xnnpack_delegated_ops(path, inputs, threads)
    rows = []
    for op, detail in zip(model.subgraphs[0].operators, details):
        content, feeds = one_op_model(model, op, values)
        timed = []
        for xnnpack in (True, False):
            single = interpreter(content, threads, xnnpack)
            single.allocate_tensors()
            for spec, value in zip(single.get_input_details(), feeds):
                single.set_tensor(spec["index"], value)
            timed.append(time_invoke(single, repeats))
        dtype = str(values[op.inputs[0]].dtype) if op.inputs[0] in values else "-"
        rows.append((detail["op_name"], dtype, *timed, detail["index"] in taken))
    return rows


def whole_model_ms(paths, inputs, threads, rounds):
    """Median ms per model, the models timed in turn so load changes hit all alike."""
    runners = {}
    for name, path in paths.items():
        runner = interpreter(path, threads).get_signature_runner("serving_default")
        runner(**inputs)
        runners[name] = runner
    times = collections.defaultdict(list)
    for _ in range(rounds):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner(**inputs)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def main(args):
    inputs = random_inputs(1)
    with tempfile.TemporaryDirectory() as tmp:
        paths = exports(pathlib.Path(tmp), args.data)
        sizes = {name: path.stat().st_size / 1e6 for name, path in paths.items()}
        whole = {threads: whole_model_ms(paths, inputs, threads, args.repeats) for threads in (1, 2)}
        print("\n| export | MB | batch 1 ms, 1 thread | 2 threads | XNNPACK takes: BATCH_MATMUL | SQUARED_DIFFERENCE / SUB | SOFTMAX |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, path in paths.items():
            coverage = xnnpack_coverage(path, inputs)
            variance = coverage.get("SQUARED_DIFFERENCE", coverage.get("SUB", (0, 0)))
            print(f"| {name} | {sizes[name]:.1f} | {whole[1][name]:.1f} | {whole[2][name]:.1f} | "
                  + " | ".join(f"{a}/{b}" for a, b in (coverage["BATCH_MATMUL"], variance, coverage["SOFTMAX"])) + " |")
        for name, path in paths.items():
            rows = profile(path, inputs, args.threads, args.repeats)
            totals = collections.defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0])
            for op, dtype, xnnpack_ms, builtin_ms, taken in rows:
                total = totals[op, dtype]
                total[0] += 1
                total[1] += xnnpack_ms if taken else builtin_ms
                total[2] += xnnpack_ms
                total[3] += builtin_ms
                total[4] += taken
            as_run = sum(t[1] for t in totals.values())
            print(f"\n{name}: ops timed alone on the kernel the full model uses: {as_run:.2f} ms "
                  f"({args.threads} thread; whole model {whole[args.threads][name]:.2f} ms)")
            print("| op | input | count | XNNPACK runs | as run ms | XNNPACK alone ms | LiteRT kernel alone ms |")
            print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
            for (op, dtype), (count, ms, xnnpack_ms, builtin_ms, taken) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
                if ms >= 0.02:
                    print(f"| {op} | {dtype} | {count} | {taken} | {ms:.2f} | {xnnpack_ms:.2f} | {builtin_ms:.2f} |")
            sys.stdout.flush()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("KT_DATA_DIR", "../shared/data"),
                        help="folder holding sst2/train.tsv, for int8 calibration")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads for the per-op timings")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per op and per model")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
