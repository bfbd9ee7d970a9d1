"""TextBrewer (PyTorch) side of benchmarks/distill_speed.py: a long-lived peer worker.

Run with the peer venv's python (benchmarks/peer/env.py makes it). It reads one JSON
object per line on stdin and writes exactly one JSON reply per line on stdout;
everything else (logs, warnings, tqdm) goes to stderr. The models live between
commands, so the harness can alternate timing blocks with the Keras step.

Commands (see README.md beside this file for the full key list):
    setup   build a random HF BertModel teacher and student, a GeneralDistiller with
            TinyBERT's intermediate matches, AdamW, and a fixed set of random batches
    steps   run n TextBrewer training steps on those batches, time each one
    epoch   one task-distillation epoch over the first sentences of an SST-2 TSV
    quit    reply and exit 0
Any failure replies {"error": ...} and the worker keeps running.
"""

import os
import sys

# The protocol owns the real stdout; anything else that writes to fd 1 or
# sys.stdout (a library's print, a C extension) lands on stderr instead.
_PROTOCOL = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import json  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402

with warnings.catch_warnings():
    # textbrewer 0.2.1 compares strings with `is not` (SyntaxWarning on import).
    warnings.simplefilter("ignore", SyntaxWarning)
    import numpy as np  # noqa: E402
    import torch  # noqa: E402
    import transformers  # noqa: E402
    import textbrewer  # noqa: E402
    from textbrewer import DistillationConfig, GeneralDistiller, TrainingConfig  # noqa: E402
    from transformers import BertConfig, BertModel  # noqa: E402

logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                    format="[peer] %(levelname)s %(name)s: %(message)s")
transformers.logging.set_verbosity_error()

# Checkpoints are saved only when the setup asks; num_steps mode requires an int.
_NO_CKPT_STEPS = 10**12


def reply(obj):
    _PROTOCOL.write(json.dumps(obj) + "\n")
    _PROTOCOL.flush()


def bert_config(spec, dropout):
    config = BertConfig(
        vocab_size=int(spec["vocabulary_size"]),
        hidden_size=int(spec["hidden_dim"]),
        num_hidden_layers=int(spec["num_layers"]),
        num_attention_heads=int(spec["num_heads"]),
        intermediate_size=int(spec["intermediate_dim"]),
        hidden_act="gelu",
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        max_position_embeddings=int(spec.get("max_position_embeddings", 512)),
        type_vocab_size=int(spec.get("type_vocab_size", 2)),
        output_hidden_states=True,
        output_attentions=True,
        # Only the eager implementation returns attention probabilities.
        attn_implementation="eager",
    )
    return config


def build_bert(spec, dropout=0.1):
    model = BertModel(bert_config(spec, dropout))
    impl = getattr(model.config, "_attn_implementation", "eager")
    if impl != "eager":
        raise RuntimeError(f"BertModel uses attn_implementation={impl!r}; need 'eager'")
    return model


def count_params(model):
    return int(sum(p.numel() for p in model.parameters()))


def tinybert_matches(layer_map, dim_s, dim_t, attention_loss="attention_mse"):
    """TextBrewer intermediate_matches equivalent to TinyBERT's layer losses.

    hidden index 0 is the embedding output, index m the output of layer m;
    attention index m-1 is layer m's attention (TextBrewer counts those from 0).
    `attention_loss` is "attention_mse" (head i vs head i) or, for different head
    counts, TextBrewer's "attention_mse_sum" (maps summed over heads first).
    """
    proj = ["linear", int(dim_s), int(dim_t)]
    matches = [{"layer_T": 0, "layer_S": 0, "feature": "hidden",
                "loss": "hidden_mse", "weight": 1, "proj": list(proj)}]
    for m in range(1, len(layer_map)):
        n = int(layer_map[m])
        matches.append({"layer_T": n, "layer_S": m, "feature": "hidden",
                        "loss": "hidden_mse", "weight": 1, "proj": list(proj)})
        matches.append({"layer_T": n - 1, "layer_S": m - 1, "feature": "attention",
                        "loss": attention_loss, "weight": 1})
    return matches


def bert_adaptor(batch, model_outputs):
    return {"hidden": model_outputs.hidden_states, "attention": model_outputs.attentions}


class TimedBatches:
    """An iterable handing TextBrewer `n` batches and stamping each hand-over.

    The stamp for batch k+1 is taken when TextBrewer asks for it, i.e. after step k
    finished (forward, losses, backward, optimizer step, zero_grad, bookkeeping).
    """

    def __init__(self, source, n):
        self.source, self.n, self.stamps, self.cpu_stamps = source, int(n), [], []

    def __len__(self):
        return self.n

    def __iter__(self):
        for _ in range(self.n):
            batch = next(self.source)
            self.stamps.append(time.perf_counter())
            self.cpu_stamps.append(time.process_time())
            yield batch


class LossRecorder:
    """Stands in for TextBrewer's tensorboard writer: keeps each step's total loss.

    TextBrewer's `write_loss` calls `.item()` on the losses every step whether or
    not a log_dir is set; this only keeps the value instead of discarding it.
    """

    def __init__(self):
        self.total = []

    def add_scalar(self, tag, value, step=None):
        if tag == "scalar/total_loss":
            self.total.append(float(value))


def cycle_forever(items):
    while True:
        yield from items


class Peer:
    def __init__(self):
        self.ready = False
        self.output_dir = None
        self.checkpoints_skipped = 0

    # -- setup -----------------------------------------------------------------
    def setup(self, msg):
        self.close()
        teacher_spec, student_spec = msg["teacher"], msg["student"]
        batch_size, seq_len = int(msg["batch_size"]), int(msg["seq_len"])
        layer_map = [int(x) for x in msg["layer_map"]]
        seed = int(msg.get("seed", 0))
        lr = float(msg.get("lr", 1e-4))
        weight_decay = float(msg.get("weight_decay", 0.01))
        dropout = float(msg.get("dropout", 0.1))
        num_batches = int(msg.get("num_batches", 4))
        save_checkpoints = bool(msg.get("save_checkpoints", False))

        n_s, n_t = int(student_spec["num_layers"]), int(teacher_spec["num_layers"])
        if len(layer_map) != n_s + 1 or layer_map[0] != 0:
            raise ValueError(f"layer_map must have num_layers+1={n_s + 1} entries starting "
                             f"with 0 (the embeddings), got {layer_map}")
        if any(not 1 <= n <= n_t for n in layer_map[1:]):
            raise ValueError(f"layer_map entries 1.. must be teacher layers in 1..{n_t}")
        same_heads = int(student_spec["num_heads"]) == int(teacher_spec["num_heads"])
        attention_loss = "attention_mse" if same_heads else "attention_mse_sum"
        for name, spec in (("teacher", teacher_spec), ("student", student_spec)):
            if int(spec["hidden_dim"]) % int(spec["num_heads"]):
                raise ValueError(f"{name}: hidden_dim {spec['hidden_dim']} is not divisible "
                                 f"by num_heads {spec['num_heads']}")
        if seq_len > int(teacher_spec.get("max_position_embeddings", 512)):
            raise ValueError(f"seq_len {seq_len} exceeds max_position_embeddings")

        if msg.get("threads"):
            torch.set_num_threads(int(msg["threads"]))
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

        teacher = build_bert(teacher_spec, dropout)
        teacher.eval()
        teacher.requires_grad_(False)
        student = build_bert(student_spec, dropout)
        student.train()

        self.output_dir = tempfile.mkdtemp(prefix="textbrewer-peer-")
        train_config = TrainingConfig(
            device="cpu",
            output_dir=self.output_dir,  # never the repo; removed on quit/re-setup
            log_dir=None,                 # no tensorboard event files
            ckpt_frequency=1,
            ckpt_epoch_frequency=1,
            ckpt_steps=_NO_CKPT_STEPS,
        )
        distill_config = DistillationConfig(
            intermediate_matches=tinybert_matches(
                layer_map, student_spec["hidden_dim"], teacher_spec["hidden_dim"],
                attention_loss),
            kd_loss_weight=0,      # the adaptors return no logits: no KD term at all
            hard_label_weight=0,   # ... and no `losses`
        )
        distiller = GeneralDistiller(
            train_config=train_config, distill_config=distill_config,
            model_T=teacher, model_S=student,
            adaptor_T=bert_adaptor, adaptor_S=bert_adaptor,
        )
        self.losses = LossRecorder()
        distiller.tb_writer = self.losses
        if not save_checkpoints:
            # BasicDistiller.train always ends by saving the student (gs{N}.pkl),
            # whatever ckpt_* says; skip that so a timed call contains training only.
            def skip_checkpoint(*args, **kwargs):
                self.checkpoints_skipped += 1
            distiller.save_and_callback = skip_checkpoint

        # TextBrewer's recipe: the optimizer holds the student's parameters and
        # distiller.train() adds one param group per projection (distiller.projs).
        self.optimizer = torch.optim.AdamW(student.parameters(), lr=lr,
                                           weight_decay=weight_decay)
        self.teacher, self.student, self.distiller = teacher, student, distiller
        self.proj_params = {id(p) for proj in distiller.projs if proj is not None
                            for p in proj.parameters()}

        g = torch.Generator().manual_seed(seed)
        vocab = min(int(teacher_spec["vocabulary_size"]), int(student_spec["vocabulary_size"]))
        self.batches = [
            {"input_ids": torch.randint(0, vocab, (batch_size, seq_len), generator=g),
             "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long),
             "token_type_ids": torch.zeros(batch_size, seq_len, dtype=torch.long)}
            for _ in range(max(1, num_batches))
        ]
        self.batch_source = cycle_forever(self.batches)
        self.ready = True
        proj_count = sum(int(p.numel()) for proj in distiller.projs if proj is not None
                         for p in proj.parameters())
        return {
            "ok": True,
            "teacher_params": count_params(teacher),
            "student_params": count_params(student),
            "projection_params": proj_count,
            "projections": sum(proj is not None for proj in distiller.projs),
            "matches": len(distill_config.intermediate_matches),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "textbrewer": textbrewer.__version__,
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
        }

    # -- training --------------------------------------------------------------
    def _train(self, dataloader, **kwargs):
        """One call of GeneralDistiller.train on the persistent models/optimizer.

        train() adds the projections' param groups to the optimizer each time it is
        called; torch refuses a parameter in two groups, so the groups added by the
        previous call are dropped first. The AdamW state (keyed by parameter) stays.
        """
        self.optimizer.param_groups = [
            group for group in self.optimizer.param_groups
            if not any(id(p) in self.proj_params for p in group["params"])
        ]
        del self.losses.total[:]
        with self.distiller:  # TextBrewer's context: teacher.eval(), student.train()
            self.distiller.train(self.optimizer, dataloader, **kwargs)

    def steps(self, msg):
        self._require_setup()
        n = int(msg.get("n", 1))
        if n < 1:
            raise ValueError("n must be >= 1")
        loader = TimedBatches(self.batch_source, n)
        start = time.perf_counter()
        self._train(loader, num_steps=n)
        end, cpu_end = time.perf_counter(), time.process_time()
        stamps = loader.stamps + [end]
        cpu_stamps = loader.cpu_stamps + [cpu_end]
        return {
            "times": [b - a for a, b in zip(stamps, stamps[1:])],
            # CPU seconds of this process (all threads) per step: steadier than the
            # wall time when other jobs share the cores.
            "cpu_times": [b - a for a, b in zip(cpu_stamps, cpu_stamps[1:])],
            "losses": list(self.losses.total),
            "overhead_seconds": loader.stamps[0] - start,  # train() entry to 1st batch
            "call_seconds": end - start,
        }

    def peak(self, msg):
        """PyTorch's float32 matmul GFLOP/s on n x n matrices (median of `repeats`)."""
        import statistics

        import torch

        n, repeats = int(msg.get("n", 3072)), int(msg.get("repeats", 3))
        a = torch.randn(n, n)
        a @ a  # warm-up
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            a @ a
            samples.append(2 * n**3 / (time.perf_counter() - start) / 1e9)
        return {"gflops": statistics.median(samples)}

    def epoch(self, msg):
        self._require_setup()
        from torch.utils.data import DataLoader
        from transformers import BertTokenizerFast

        num_examples = int(msg.get("num_examples", 2000))
        seq_len, batch_size = int(msg["seq_len"]), int(msg["batch_size"])
        sentences = read_sst2_sentences(msg["tsv"], num_examples)

        t0 = time.perf_counter()
        tokenizer = BertTokenizerFast(vocab_file=msg["vocab"], do_lower_case=True)
        encoded = tokenizer(sentences, padding="max_length", truncation=True,
                            max_length=seq_len, return_tensors="pt")
        tokenize_seconds = time.perf_counter() - t0
        vocab_limit = min(self.teacher.config.vocab_size, self.student.config.vocab_size)
        if int(encoded["input_ids"].max()) >= vocab_limit:
            raise ValueError(f"the tokenizer's ids reach {int(encoded['input_ids'].max())}, "
                             f"beyond the models' vocabulary_size {vocab_limit}")
        rows = [{"input_ids": encoded["input_ids"][i],
                 "attention_mask": encoded["attention_mask"][i],
                 "token_type_ids": encoded["token_type_ids"][i]}
                for i in range(len(sentences))]
        # As the paper's task distillation: a shuffled sampler, last partial batch kept.
        loader = DataLoader(rows, batch_size=batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(int(msg.get("seed", 0))))

        start, cpu_start = time.perf_counter(), time.process_time()
        self._train(loader, num_epochs=1)
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "cpu_seconds": time.process_time() - cpu_start,
            "steps": len(loader),
            "examples": len(sentences),
            "tokenize_seconds": tokenize_seconds,
            "first_loss": self.losses.total[0] if self.losses.total else None,
            "last_loss": self.losses.total[-1] if self.losses.total else None,
        }

    def _require_setup(self):
        if not self.ready:
            raise RuntimeError("send a 'setup' command first")

    def close(self):
        if self.output_dir:
            shutil.rmtree(self.output_dir, ignore_errors=True)
            self.output_dir = None
        self.ready = False


def read_sst2_sentences(path, limit):
    """The first `limit` sentences of a GLUE SST-2 TSV (header: sentence<TAB>label)."""
    sentences = []
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        if "sentence" not in header:
            raise ValueError(f"{path}: no 'sentence' column in the header {header}")
        column = header.index("sentence")
        for line in handle:
            if len(sentences) >= limit:
                break
            fields = line.rstrip("\n").split("\t")
            if len(fields) > column and fields[column]:
                sentences.append(fields[column])
    if len(sentences) < limit:
        raise ValueError(f"{path} has only {len(sentences)} sentences, {limit} asked")
    return sentences


def error_reply(exc):
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    where = " <- ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}"
                        for f in reversed(frames))
    return {"error": f"{type(exc).__name__}: {exc}" + (f" (at {where})" if where else "")}


def main():
    peer = Peer()
    handlers = {"setup": peer.setup, "steps": peer.steps, "epoch": peer.epoch,
                "peak": peer.peak}
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("a command is a JSON object")
            cmd = msg.get("cmd")
            if cmd == "quit":
                peer.close()
                reply({"ok": True})
                return 0
            if cmd not in handlers:
                raise ValueError(f"unknown cmd {cmd!r}; expected setup, steps, epoch, peak or quit")
            reply(handlers[cmd](msg))
        except Exception as exc:  # keep serving after any failure
            traceback.print_exc(file=sys.stderr)
            reply(error_reply(exc))
    peer.close()  # stdin closed without quit
    return 0


if __name__ == "__main__":
    sys.exit(main())
