"""`keras-tinybert finetune-teacher`: fine-tune a pre-trained BERT on a GLUE task.

With `--student-shape`, the same command trains a student-shaped model from scratch on
the labels alone: the baseline that shows what distillation adds.

    keras-tinybert finetune-teacher --model bert_base_en_uncased --task sst2 \\
        --data-dir ../shared/data/sst2 --epochs 3 --output runs

`--model` is a keras-hub preset (needs a network), a Hugging Face BERT folder, or a
saved `.keras` model. The result is a new run directory with `model.keras` and a
`metadata.json` carrying the task's label names (so every later stage checks them).
"""

import json
import time


def add_arguments(parser):
    parser.add_argument("--model", required=True,
                        help="keras-hub preset, Hugging Face folder or .keras model")
    parser.add_argument("--task", required=True, help="GLUE task, e.g. sst2")
    parser.add_argument("--data-dir", help="local GLUE folder; default: TFDS")
    parser.add_argument("--max-examples", type=int, help="train on the first N")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--student-shape",
                        help="train a fresh, randomly initialised model of this shape "
                        "(NL-HH-II[-AA]) of --model's family and vocabulary instead: "
                        "the labels-only baseline of a distilled student")
    parser.add_argument("--output", default="runs", help="runs are created in here")
    parser.add_argument("--seed", type=int, default=0)


def run(args):
    import keras

    import keras_tinybert as kt
    from keras_tinybert import pipeline

    keras.utils.set_random_seed(args.seed)
    spec = kt.data.get_task(args.task)
    print(f"finetune-teacher: {args.model} on {spec.name} "
          f"({spec.num_classes} classes)", flush=True)
    model = pipeline.load_model(args.model, spec.num_classes, args.seq_len)
    kind = "teacher"
    if args.student_shape:
        from keras_tinybert.commands.distill import parse_shape

        model = kt.models.student_like(model, **parse_shape(args.student_shape))
        kind = "labels"
    if spec.label_names:
        kt.data.set_label_names(model, spec.label_names)
    raw = kt.data.load_glue(args.task, "train", args.data_dir)
    if args.max_examples:
        raw = raw.take(args.max_examples)
    buckets = [b for b in (16, 32, 64) if b < args.seq_len]
    train = kt.data.to_model_inputs(raw, model, args.batch_size,
                                    sequence_length=args.seq_len,
                                    bucket_boundaries=buckets, shuffle_buffer=20_000,
                                    seed=args.seed).cache()
    dev = kt.data.to_model_inputs(kt.data.load_glue(args.task, "dev", args.data_dir),
                                  model, 64, sequence_length=args.seq_len,
                                  bucket_boundaries=buckets).cache()
    loss = (keras.losses.MeanSquaredError() if spec.is_regression else
            keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    steps = sum(1 for _ in train) * args.epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps, warmup_target=args.lr, warmup_steps=max(1, steps // 10))
    # The data is tokenised already: train the network without its preprocessor.
    network = keras.Model(model.inputs, model.outputs)
    network.compile(optimizer=kt.optimizers.AdamW(schedule), loss=loss,
                    metrics=[] if spec.is_regression else ["accuracy"])
    run_dir = pipeline.new_run_dir(args.output, f"{kind}-{spec.name}")
    print(f"finetune-teacher: writing to {run_dir}", flush=True)
    start = time.time()
    history = network.fit(train, validation_data=dev, epochs=args.epochs,
                          verbose=2).history
    dev_metrics = kt.data.evaluate(model, dev, task=args.task)
    model.save(run_dir / "model.keras")
    summary = {"dev": dev_metrics, "seconds": round(time.time() - start, 1),
               "parameters": model.count_params(),
               "encoder_parameters": kt.models.encoder_parameters(model)}
    for name, payload in (("metadata", {"label_names": list(spec.label_names or []),
                                        "source": str(args.model), "task": spec.name}),
                          ("config", vars(args) | {"_run": None}),
                          ("history", history), ("summary", summary)):
        payload = {k: v for k, v in payload.items() if not k.startswith("_")}
        (run_dir / f"{name}.json").write_text(
            json.dumps(pipeline._plain(payload), indent=2, default=str) + "\n")
    print(json.dumps(summary, indent=2, default=str))
    return 0
