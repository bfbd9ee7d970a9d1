"""The recipe as a library: fine-tune a teacher, distil one stage, run a recipe.

TinyBERT (§3.2) distils in two stages: *general* distillation from a pre-trained
teacher on plain text, then *task-specific* distillation from a fine-tuned teacher on
(augmented) task data — intermediate layers first, then the prediction layer. Every
step is one `kt.Config` and one call, and writes one run (`keras_tinybert.runs`):

    teacher = kt.train.finetune(kt.Config(stage="finetune", teacher="bert_base_en_uncased",
                                          task="sst2", data_dir="glue/SST-2"))
    configs = kt.train.load_recipe("examples/configs/sst2_quick.yaml")
    run_dirs = kt.train.run_recipe(configs)

In a recipe each distillation stage after the first starts from the previous one's
student and its projections W_e/W_h, as the paper's code does. A recipe is checked
whole (unknown stages and keys, unset variables, missing teacher/task/corpus) before
its first stage runs. The `keras-tinybert finetune-teacher` and `distill` commands
are these functions behind argparse.
"""

import json
import os
import pathlib
import re
import time

from keras_tinybert import runs
from keras_tinybert.config import DEFAULT_STUDENT_SHAPE, Config, parse_shape

# `${VAR}` or `${VAR:-default}` in a recipe, taken from the environment.
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def log(message):
    """A progress line (stdout, flushed: it shows at once in a log file)."""
    print(message, flush=True)


def check(config):
    """Raise if `config` lacks what its stage needs, before anything is loaded."""
    from keras_tinybert.data.tasks import get_task

    if not config.teacher:
        if config.is_finetune:
            raise ValueError("stage 'finetune' needs teacher=<the pre-trained model to "
                             "fine-tune> (--model on the command line).")
        raise ValueError(f"stage {config.stage!r} needs teacher=<a run, .keras file, "
                         "Hugging Face folder or preset> (--teacher on the command "
                         "line, or a recipe with --config).")
    if config.stage == "general":
        if not config.corpus:
            raise ValueError("stage 'general' needs corpus=[text files] (--corpus FILES "
                             "on the command line).")
    elif not config.task:
        raise ValueError(f"stage {config.stage!r} needs task=<a GLUE task, e.g. 'sst2'> "
                         "(--task on the command line).")
    else:
        get_task(config.task)
    for name in ("data_dir", "train_file"):
        path = getattr(config, name)
        if path and not pathlib.Path(path).exists():
            raise FileNotFoundError(
                f"{name} {path} does not exist (--{name.replace('_', '-')} on the "
                "command line).")


def finetune(config, run_dir=None):
    """Fine-tune `config.teacher` on `config.task`; returns the new run's directory.

    With `config.student_shape`, a fresh model of that shape (the teacher's family
    and vocabulary) is trained on the labels alone instead: the baseline that shows
    what distillation adds. The run is named `teacher-<task>-…` or `labels-<task>-…`.
    """
    import keras

    import keras_tinybert as kt

    if not config.is_finetune:
        raise ValueError(f"finetune() runs stage 'finetune', not {config.stage!r}; "
                         "use distill_stage() for distillation.")
    check(config)
    strategy, _ = _start(config)
    spec = kt.data.get_task(config.task)
    log(f"finetune: {config.teacher} on {spec.name} ({spec.num_classes} classes)")
    with strategy.scope():
        model = runs.load_model(config.teacher, spec.num_classes, config.seq_len)
        kind = "teacher"
        if config.student_shape:
            model = kt.models.student_like(model, **parse_shape(config.student_shape))
            kind = "labels"
    if spec.label_names:
        kt.data.set_label_names(model, spec.label_names)
    train, dev = kt.data.task_datasets(config.task, model, config, log=log)
    loss = (keras.losses.MeanSquaredError() if spec.is_regression else
            keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with strategy.scope():
        # The data is tokenised already: train the network without its preprocessor.
        network = keras.Model(model.inputs, model.outputs)
        network.compile(optimizer=kt.optimizers.AdamW(learning_rate(config, train)),
                        loss=loss, metrics=[] if spec.is_regression else ["accuracy"])
    run_dir = _run_dir(run_dir, config, f"{kind}-{spec.name}")
    start = time.time()
    history = _fit(network, train, dev, config)
    summary = {"dev": kt.data.evaluate(model, dev, task=config.task),
               "seconds": round(time.time() - start, 1),
               "parameters": model.count_params(),
               "encoder_parameters": kt.models.encoder_parameters(model)}
    runs.save_run(run_dir, model, config, history, summary)
    log(json.dumps(summary, indent=2, default=str))
    return run_dir


def distill_stage(config, run_dir=None):
    """One stage of TinyBERT distillation (`config.stage`); returns the run's directory.

    The student is `config.student` (an earlier run, whose W_e/W_h are loaded unless
    `config.new_projections`) or a new one of `config.student_shape` (default
    TinyBERT4) built from the teacher.
    """
    import keras_tinybert as kt

    if config.is_finetune:
        raise ValueError("distill_stage() runs a distillation stage; use finetune() "
                         "for stage 'finetune'.")
    check(config)
    strategy, precision = _start(config)
    num_classes = kt.data.get_task(config.task).num_classes if config.task else None
    log(f"distill: stage={config.stage} teacher={config.teacher} "
        f"strategy={type(strategy).__name__} ({strategy.num_replicas_in_sync} "
        f"replicas) precision={precision}")
    with strategy.scope():
        teacher = runs.load_model(config.teacher, num_classes, config.seq_len)
        if config.student:
            student = kt.models.task_like(runs.load_model(config.student), teacher)
        else:
            shape = parse_shape(config.student_shape or DEFAULT_STUDENT_SHAPE)
            student = kt.models.student_like(teacher, **shape)
        if getattr(teacher, "label_names", None):
            kt.data.set_label_names(student, teacher.label_names)
        distiller = kt.Distiller(teacher, student, stage=config.stage,
                                 layer_map=config.layer_map,
                                 temperature=config.temperature,
                                 teacher_precision=config.teacher_precision)
        _load_projections(config, distiller)
    if config.stage == "general":
        # The teacher's preprocessor packs the text; a bare backbone's tokenizer else.
        packer = (teacher if getattr(teacher, "preprocessor", None) is not None
                  else runs.load_tokenizer(config.teacher))
        train, dev = kt.data.corpus_dataset(config.corpus, packer, config), None
    else:
        train, dev = kt.data.task_datasets(config.task, teacher, config, log=log)
    with strategy.scope():
        distiller.compile(optimizer=kt.optimizers.AdamW(learning_rate(config, train)))
    run_dir = _run_dir(run_dir, config, f"distill-{config.stage}")
    start = time.time()
    history = _fit(distiller, train, dev, config)
    summary = {
        "stage": config.stage,
        "seconds": round(time.time() - start, 1),
        "student_parameters": student.count_params(),
        "student_encoder_parameters": kt.models.encoder_parameters(student),
        "teacher_encoder_parameters": kt.models.encoder_parameters(teacher),
        "final": {k: v[-1] for k, v in history.items() if isinstance(v, list) and v},
    }
    if dev is not None:
        summary["dev_student"] = kt.data.evaluate(student, dev, task=config.task)
    runs.save_run(run_dir, student, config, history, summary, teacher=teacher,
                  projections=distiller.projection_weights())
    log(json.dumps(summary, indent=2, default=str))
    return run_dir


def _start(config):
    """Seed, dtype policy and distribution strategy of a run (before any model):
    returns `(strategy, policy name)`."""
    import keras

    import keras_tinybert as kt

    keras.utils.set_random_seed(config.seed)
    precision = kt.distribute.mixed_precision(config.mixed_precision)
    return kt.distribute.strategy(config.strategy, tpu=config.tpu), precision


def _run_dir(run_dir, config, name):
    """`run_dir` (created if needed, refused if it holds a model) or a new run, with
    its config.json written at once (a crashed run still says what it was)."""
    if run_dir is None:
        run_dir = runs.new_run_dir(config.output, name)
    else:
        run_dir = pathlib.Path(run_dir)
        if runs.find_model_file(run_dir) is not None:
            raise FileExistsError(f"{run_dir} holds a finished run; runs are never "
                                  "overwritten: pass another run_dir, or none.")
        run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    log(f"{config.stage}: writing to {run_dir}")
    return run_dir


def _fit(model, train, dev, config):
    """`fit` for `config.epochs`, resumable from `config.backup_dir` when set."""
    import keras_tinybert as kt

    if config.backup_dir:
        return kt.resume.fit_resumable(model, train, config.epochs, config.backup_dir,
                                       config.save_freq, validation_data=dev, verbose=2)
    return model.fit(train, validation_data=dev, epochs=config.epochs, verbose=2).history


def learning_rate(config, train):
    """`config.lr`, or for the cosine schedule a linear warm-up over `config.warmup`
    of the steps to `config.lr`, then cosine decay to 0 (Keras' `CosineDecay`)."""
    import keras

    if config.learning_rate_schedule == "constant":
        return config.lr
    steps = int(train.cardinality())
    if steps < 0:  # unknown (bucketed batches, text files): count them once
        log("counting one epoch's batches for the schedule (a pass over the input, "
            "without the models)")
        steps = int(train.reduce(0, lambda count, _: count + 1))
    total = max(1, steps * config.epochs)
    warmup = int(config.warmup * total)
    log(f"cosine schedule over {total} steps ({warmup} warm-up)")
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=total - warmup, warmup_target=config.lr, warmup_steps=warmup)


def _load_projections(config, distiller):
    """Start W_e/W_h from the `config.student` run's, as the paper's code does."""
    saved = runs.load_projections(config.student) if config.student else None
    if not saved or config.new_projections:
        return
    try:
        loaded = distiller.set_projection_weights(saved)
    except ValueError as error:
        raise ValueError(f"{config.student}: {error} Pass new_projections=True "
                         "(--new-projections on the command line).") from None
    if loaded:
        log(f"distill: {', '.join(loaded)} loaded from {config.student}")


def run_recipe(configs):
    """Run a recipe's stages in order; returns their run directories.

    Each distillation stage whose `student` is unset starts from the previous
    distillation stage's student (and its projections); a `finetune` stage runs on
    its own. A shared `backup_dir` gets one sub-folder per stage. Every stage is
    checked before the first runs.
    """
    configs = list(configs)
    if not configs:
        raise ValueError("A recipe needs at least one stage.")
    for i, config in enumerate(configs, 1):
        _check_stage(config, f"stage {i}")
    student, run_dirs = None, []
    for i, config in enumerate(configs, 1):
        changes = {}
        if student and not config.is_finetune and not config.student:
            changes["student"] = student
        if config.backup_dir:  # one backup per stage, or stages collide
            changes["backup_dir"] = f"{config.backup_dir}/stage-{i}-{config.stage}"
        config = config.replace(**changes)
        log(f"recipe: stage {i}/{len(configs)}: {config.stage}")
        if config.is_finetune:
            run_dirs.append(finetune(config))
        else:
            run_dirs.append(distill_stage(config))
            student = str(run_dirs[-1])
    log("recipe: runs " + json.dumps([str(r) for r in run_dirs], indent=2))
    return run_dirs


def load_recipe(path, base=None):
    """The stages of a recipe YAML as `Config`s, checked whole before any runs.

    The YAML's top-level keys are shared by every stage and `stages:` lists each
    stage's own; both override `base` (e.g. the command line's options), except that
    a `student` outside a stage applies to the first stage only (later ones chain).
    `${VAR}` and `${VAR:-default}` are taken from the environment.

    Raises:
        ValueError: an unknown stage or key (the message names the known ones), an
            unset variable without a default, or a stage missing what it needs.
    """
    import yaml

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No recipe at {path}.")
    recipe = yaml.safe_load(_expand_variables(path.read_text(encoding="utf-8"), path))
    stages = recipe.get("stages") if isinstance(recipe, dict) else None
    if not isinstance(stages, list) or not stages or not all(
            isinstance(stage, dict) for stage in stages):
        raise ValueError(f"{path}: a recipe needs a non-empty `stages:` list, each "
                         "item a mapping of options (e.g. `- stage: general`).")
    shared = {key: value for key, value in recipe.items() if key != "stages"}
    base = Config.from_dict({**(base or Config()).to_dict(), **shared},
                            where=f"{path} (top level)")
    configs = []
    for i, stage in enumerate(stages, 1):
        where = f"{path}, stage {i}"
        options = {**base.to_dict(), **stage}
        if i > 1 and "student" not in stage:
            options["student"] = None  # chained from the previous stage
        config = Config.from_dict(options, where=where)
        _check_stage(config, where)
        configs.append(config)
    return configs


def _check_stage(config, where):
    try:
        check(config)
    except (ValueError, FileNotFoundError) as error:
        raise type(error)(f"{where}: {error}") from None


def _expand_variables(text, path):
    """`text` with `${VAR}` / `${VAR:-default}` replaced from the environment; a
    variable without a default must be set (comments are not read)."""
    code = "\n".join(re.sub(r"(^|\s)#.*", "", line) for line in text.splitlines())
    unset = sorted({m.group(1) for m in _VARIABLE.finditer(code)
                    if m.group(2) is None and m.group(1) not in os.environ})
    if unset:
        raise ValueError(
            f"{path}: environment variable(s) {unset} are not set and have no default: "
            f"set them (e.g. `export {unset[0]}=...`) or write "
            f"${{{unset[0]}:-<default>}} in the recipe.")
    return _VARIABLE.sub(lambda m: os.environ.get(m.group(1)) or m.group(2) or "", text)
