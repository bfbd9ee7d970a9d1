"""`keras-tinybert distill`: one stage of TinyBERT distillation as a new run.

    keras-tinybert distill --teacher runs/teacher-.../ --stage intermediate \\
        --task sst2 --data-dir ../shared/data/sst2 --student-shape 2L-128H-512I \\
        --epochs 3 --strategy auto --mixed-precision none --backup-dir /tmp/bk

General distillation reads plain text instead of a task: `--stage general --corpus
FILES`. The student comes from `--student` (an earlier run: the recipe's stages chain)
or is built from the teacher with `--student-shape` / `--student-preset`.
"""

import json
import re
import time

STAGES = ("general", "intermediate", "prediction", "joint")


def add_arguments(parser):
    parser.add_argument("--config", help="a recipe YAML: stages run in order, each "
                        "starting from the previous stage's student")
    parser.add_argument("--teacher",
                        help="a run/.keras model, a Hugging Face folder or a preset")
    parser.add_argument("--student", help="start from this saved student (a run dir)")
    parser.add_argument("--new-projections", action="store_true",
                        help="with --student: start W_e/W_h afresh instead of from "
                        "the student's run")
    parser.add_argument("--student-shape", default="4L-312H-1200I",
                        help="NL-HH-II[-AA] for a new student (default TinyBERT4)")
    parser.add_argument("--stage", choices=STAGES, default="intermediate")
    parser.add_argument("--task", help="GLUE task (task stages), e.g. sst2")
    parser.add_argument("--data-dir", help="local GLUE folder; default: TFDS")
    parser.add_argument("--train-file", help="a GLUE-layout TSV to train on instead "
                        "of the task's train split (e.g. augmented data)")
    parser.add_argument("--corpus", nargs="+", help="text files (general stage)")
    parser.add_argument("--max-examples", type=int, help="use the first N examples")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--schedule", default="constant", choices=("constant", "cosine"),
                        help="cosine: linear warm-up over --warmup of the steps to "
                        "--lr, then cosine decay to 0 (Keras' CosineDecay)")
    parser.add_argument("--warmup", type=float, default=0.1,
                        help="fraction of the steps to warm up over (--schedule cosine)")
    parser.add_argument("--layer-map", default="uniform")
    parser.add_argument("--no-cache-teacher", dest="cache_teacher", action="store_false",
                        help="prediction stage: run the teacher every epoch instead of "
                        "computing its logits once")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--strategy", default="auto",
                        choices=("auto", "default", "mirrored", "multi_worker", "tpu"))
    parser.add_argument("--tpu", help="TPU name/address (with --strategy tpu)")
    parser.add_argument("--mixed-precision", default="none",
                        choices=("none", "bf16", "fp16"))
    parser.add_argument("--teacher-precision", default="float32",
                        choices=("float32", "bfloat16"),
                        help="bfloat16: the frozen teacher's forward in mixed_bfloat16 "
                        "(faster on AVX512-BF16/AMX CPUs and TPUs; losses within 1%%)")
    parser.add_argument("--backup-dir", help="resume from / back up to this folder")
    parser.add_argument("--save-freq", type=int, default=200,
                        help="steps between backups")
    parser.add_argument("--output", default="runs", help="runs are created in here")
    parser.add_argument("--seed", type=int, default=0)


def parse_shape(text):
    """'4L-312H-1200I' or '4L-312H-1200I-12A' → dict of student_like arguments."""
    match = re.fullmatch(r"(\d+)L-(\d+)H-(\d+)I(?:-(\d+)A)?", text.strip())
    if not match:
        raise ValueError(
            f"--student-shape {text!r} is not of the form 4L-312H-1200I[-12A]."
        )
    layers, hidden, inter, heads = match.groups()
    return {"num_layers": int(layers), "hidden_dim": int(hidden),
            "intermediate_dim": int(inter),
            "num_heads": int(heads) if heads else None}


def _layer_map(text):
    if re.fullmatch(r"\d+(,\d+)*", text):
        return [int(n) for n in text.split(",")]
    return text


def _datasets(args, teacher):
    from keras_tinybert import data
    from keras_tinybert.data.glue import table_dataset
    from keras_tinybert.pipeline import load_tokenizer

    if args.stage == "general":
        if not args.corpus:
            raise SystemExit("--stage general needs --corpus FILES (plain text).")
        train = data.text_corpus(args.corpus, load_tokenizer(args.teacher, teacher),
                                 args.seq_len, args.batch_size, seed=args.seed)
        if args.max_examples:
            train = train.take(max(1, args.max_examples // args.batch_size))
        return train, None
    if not args.task:
        raise SystemExit(f"--stage {args.stage} needs --task (and --data-dir).")
    if args.train_file:
        raw_train = table_dataset(data.read_glue_tsv(args.train_file, args.task))
    else:
        raw_train = data.load_glue(args.task, "train", args.data_dir)
    raw_dev = data.load_glue(args.task, "dev", args.data_dir)
    if args.max_examples:
        raw_train = raw_train.take(args.max_examples)
    if args.stage == "prediction" and args.cache_teacher:
        start = time.time()
        raw_train = data.with_teacher_logits(raw_train, teacher, sequence_length=args.seq_len)
        print(f"distill: the teacher's logits computed once, in {time.time() - start:.0f} s "
              f"(--no-cache-teacher runs the teacher every epoch)", flush=True)
    buckets = [b for b in (16, 32, 64) if b < args.seq_len]
    # Not cached: a cache after the shuffle would replay epoch 1's order every epoch.
    train = data.to_model_inputs(raw_train, teacher, args.batch_size,
                                 sequence_length=args.seq_len, bucket_boundaries=buckets,
                                 shuffle_buffer=10_000, seed=args.seed)
    dev = data.to_model_inputs(raw_dev, teacher, args.batch_size,
                               sequence_length=args.seq_len, bucket_boundaries=buckets)
    return train, dev.cache()


def _learning_rate(args, train):
    """`--lr`, or with `--schedule cosine` a warm-up + cosine decay over the run."""
    import keras

    if args.schedule == "constant":
        return args.lr
    steps = int(train.cardinality())
    if steps < 0:  # unknown (bucketed batches, text files): count them once
        print("distill: counting one epoch's batches for the schedule "
              "(a pass over the input, without the models)", flush=True)
        steps = int(train.reduce(0, lambda count, _: count + 1))
    total = max(1, steps * args.epochs)
    warmup = int(args.warmup * total)
    print(f"distill: cosine schedule over {total} steps ({warmup} warm-up)", flush=True)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=total - warmup, warmup_target=args.lr, warmup_steps=warmup)


def _load_projections(args, distiller):
    """Start W_e/W_h from the `--student` run's, as the paper's code does."""
    from keras_tinybert import pipeline

    saved = pipeline.load_projections(args.student) if args.student else None
    if not saved or args.new_projections:
        return
    try:
        loaded = distiller.set_projection_weights(saved)
    except ValueError as error:
        raise SystemExit(f"{args.student}: {error} Pass --new-projections.") from None
    if loaded:
        print(f"distill: {', '.join(loaded)} loaded from {args.student}", flush=True)


def run(args):
    if args.config:
        run_recipe(args)
    else:
        run_stage(args)
    return 0


def run_recipe(args):
    """Run a recipe's stages in order; each starts from the last one's student.

    The YAML has top-level options (any `distill` flag, with `_` for `-`) and a
    `stages:` list of per-stage options; `${VAR}` and `${VAR:-default}` are expanded
    from the environment (e.g. the data folder).
    """
    import argparse
    import os
    import re as _re

    import yaml

    text = open(args.config, encoding="utf-8").read()
    text = _re.sub(r"\$\{(\w+)(?::-([^}]*))?\}",
                   lambda m: os.environ.get(m.group(1), m.group(2) or ""), text)
    recipe = yaml.safe_load(text)
    if not recipe or not recipe.get("stages"):
        raise SystemExit(f"{args.config}: a recipe needs a non-empty `stages:` list.")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = {k: v for k, v in vars(args).items()
                if k not in ("config", "_run", "command")}
    common = {k: v for k, v in recipe.items() if k != "stages"}
    student, runs = args.student, []
    for i, stage in enumerate(recipe["stages"], 1):
        options = {**defaults, **common, **stage}
        unknown = set(options) - set(vars(parser.parse_args([])))
        if unknown:
            raise SystemExit(f"{args.config}: unknown option(s) {sorted(unknown)} "
                             f"in stage {i}.")
        if student and "student" not in stage:
            options["student"] = student
        if options.get("backup_dir"):  # one backup per stage, or stages collide
            options["backup_dir"] = f"{options['backup_dir']}/stage-{i}-{options['stage']}"
        options["config"] = None
        print(f"recipe: stage {i}/{len(recipe['stages'])}: {options['stage']}",
              flush=True)
        run_dir = run_stage(argparse.Namespace(**options))
        student = str(run_dir)
        runs.append(student)
    print("recipe: runs", json.dumps(runs, indent=2))
    return runs


def run_stage(args):
    import keras

    import keras_tinybert as kt
    from keras_tinybert import pipeline

    if not args.teacher:
        raise SystemExit("distill needs --teacher (or --config RECIPE.yaml).")
    keras.utils.set_random_seed(args.seed)
    precision = kt.distribute.mixed_precision(args.mixed_precision)
    strategy = kt.distribute.strategy(args.strategy, tpu=args.tpu)
    num_classes = None
    if args.task:
        num_classes = kt.data.get_task(args.task).num_classes
    print(f"distill: stage={args.stage} teacher={args.teacher} "
          f"strategy={type(strategy).__name__} ({strategy.num_replicas_in_sync} "
          f"replicas) precision={precision}", flush=True)
    with strategy.scope():
        teacher = pipeline.load_model(args.teacher, num_classes, args.seq_len)
        if args.student:
            student = kt.models.task_like(pipeline.load_model(args.student), teacher)
        else:
            shape = parse_shape(args.student_shape)
            student = kt.models.student_like(teacher, **shape)
        if getattr(teacher, "label_names", None):
            kt.data.set_label_names(student, teacher.label_names)
        distiller = kt.Distiller(teacher, student, stage=args.stage,
                                 layer_map=_layer_map(args.layer_map),
                                 temperature=args.temperature,
                                 teacher_precision=args.teacher_precision)
        _load_projections(args, distiller)
    train, dev = _datasets(args, teacher)
    with strategy.scope():
        distiller.compile(optimizer=kt.optimizers.AdamW(_learning_rate(args, train)))
    run_dir = pipeline.new_run_dir(args.output, f"distill-{args.stage}")
    config = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"distill: writing to {run_dir}", flush=True)
    start = time.time()
    if args.backup_dir:
        history = kt.resume.fit_resumable(
            distiller, train, args.epochs, args.backup_dir, args.save_freq,
            validation_data=dev, verbose=2)
    else:
        history = distiller.fit(train, validation_data=dev, epochs=args.epochs,
                                verbose=2).history
    summary = {
        "stage": args.stage,
        "seconds": round(time.time() - start, 1),
        "student_parameters": student.count_params(),
        "student_encoder_parameters": kt.models.encoder_parameters(student),
        "teacher_encoder_parameters": kt.models.encoder_parameters(teacher),
        "final": {k: v[-1] for k, v in history.items() if isinstance(v, list) and v},
    }
    if dev is not None:
        summary["dev_student"] = kt.data.evaluate(student, dev, task=args.task)
    pipeline.save_run(run_dir, student, history, config, summary, teacher,
                      projections=distiller.projection_weights())
    print(json.dumps(summary, indent=2, default=str))
    return run_dir
