"""Teacher forward through the taps against keras-hub's own forward, in one run.

    nice -n 10 python benchmarks/taps_speed.py [--cases deberta_v3 albert]
        [--batch-size 8] [--seq-len 128] [--rounds 6] [--calls 3]

The teacher's forward pass in distillation goes through `kt.Taps` (every block's
output and pre-softmax scores, replayed from the model's graph through the block
adapters) instead of keras-hub's `backbone(x)`. This compares the two on
base-sized teachers with random weights and random token ids (no padding):

  deberta_v3  DebertaV3Backbone 12L-768H-12A-3072I, 128k vocabulary, 256 buckets
  albert      AlbertBackbone 12 calls of one shared 768H-12A-3072I block, E=128

Both are `tf.function`s in inference mode (as the distiller runs the frozen
teacher); the taps return all M outputs and M score matrices, keras-hub its
sequence output. They are timed in alternating blocks of calls after warm-up, so
that a busy machine slows both alike; figures are medians per call. The target
(issue 14) is taps ≤ 1.1 × keras-hub.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_tinybert as kt  # noqa: E402

CASES = {
    "deberta_v3": lambda: keras_hub.models.DebertaV3Backbone(
        vocabulary_size=128100, num_layers=12, num_heads=12, hidden_dim=768,
        intermediate_dim=3072, max_sequence_length=512, bucket_size=256, dropout=0.1),
    "albert": lambda: keras_hub.models.AlbertBackbone(
        vocabulary_size=30000, num_layers=12, num_heads=12, embedding_dim=128,
        hidden_dim=768, intermediate_dim=3072, num_groups=1, num_inner_repetitions=1,
        max_sequence_length=512, dropout=0.1),
    "bert": lambda: keras_hub.models.BertBackbone(
        vocabulary_size=30522, num_layers=12, num_heads=12, hidden_dim=768,
        intermediate_dim=3072, max_sequence_length=512, dropout=0.1),
}


def inputs_for(backbone, batch_size, seq_len, seed=0):
    rng = np.random.default_rng(seed)
    values = {
        "token_ids": rng.integers(5, 1000, (batch_size, seq_len)),
        "padding_mask": np.ones((batch_size, seq_len)),
        "segment_ids": np.zeros((batch_size, seq_len)),
    }
    return {k: tf.constant(values[k], "int32") for k in backbone.input}


def time_calls(fn, x, calls):
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), fn(x))
        times.append(time.perf_counter() - start)
    return times


def compare(name, batch_size, seq_len, rounds, calls):
    keras.utils.set_random_seed(0)
    backbone = CASES[name]()
    x = inputs_for(backbone, batch_size, seq_len)
    taps = kt.Taps(backbone)
    own = tf.function(lambda x: backbone(x, training=False))
    tapped = tf.function(lambda x: taps(x, training=False))
    out = tapped(x)
    sequence = own(x)
    sequence = sequence["sequence_output"] if isinstance(sequence, dict) else sequence
    gap = float(np.abs(np.asarray(out["hidden"][-1]) - np.asarray(sequence)).max())
    for fn in (own, tapped):
        time_calls(fn, x, 2)  # warm-up
    times = {"keras-hub": [], "taps": []}
    for _ in range(rounds):
        times["keras-hub"] += time_calls(own, x, calls)
        times["taps"] += time_calls(tapped, x, calls)
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"{name:>10}: {taps.num_layers} block calls, batch {batch_size}, seq {seq_len}: "
          f"keras-hub {medians['keras-hub'] * 1e3:7.1f} ms, taps "
          f"{medians['taps'] * 1e3:7.1f} ms, ratio {medians['taps'] / medians['keras-hub']:.3f} "
          f"(last block max |Δ| {gap:.1e})", flush=True)
    return medians


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["deberta_v3", "albert"],
                        choices=sorted(CASES))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    print(f"TensorFlow {tf.__version__}, keras-hub {keras_hub.__version__}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    for name in args.cases:
        compare(name, args.batch_size, args.seq_len, args.rounds, args.calls)


if __name__ == "__main__":
    main()
