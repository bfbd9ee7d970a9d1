"""`kt.train` end to end on tiny models and a tiny local GLUE folder: a teacher is
fine-tuned, a recipe chains general → intermediate → prediction, and recipes are
checked whole before anything runs."""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_tinybert as kt
from keras_tinybert import cli, runs, testing, train

POSITIVE = ["good", "great", "funny", "brilliant", "charming", "beautiful", "best"]
NEGATIVE = ["bad", "terrible", "boring", "dull", "awful", "stupid", "worst"]
NOUNS = ["film", "movie", "story", "plot", "music", "script", "scene", "actors"]


def _sentences(count, seed):
    """Sentences of the tiny vocabulary, labelled 1 when their adjective is positive."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        label = int(rng.integers(2))
        adjective = rng.choice(POSITIVE if label else NEGATIVE)
        words = ["the", rng.choice(NOUNS), "is", "very", adjective]
        rows.append((" ".join(words[: 3 + int(rng.integers(3))] + [adjective]), label))
    return rows


def _write_tsv(path, rows, extra=""):
    lines = ["sentence\tlabel"] + [f"{s}\t{y}" for s, y in rows]
    path.write_text("\n".join(lines) + "\n" + extra)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny SST-2 folder, a text corpus and a "pre-trained" tiny BERT (.keras)."""
    base = tmp_path_factory.mktemp("train")
    glue = base / "SST-2"
    glue.mkdir()
    _write_tsv(glue / "train.tsv", _sentences(64, seed=0))
    _write_tsv(glue / "dev.tsv", _sentences(16, seed=1))
    (base / "corpus.txt").write_text(
        "\n".join(s for s, _ in _sentences(200, seed=2)) + "\n")
    pretrained = testing.tiny_classifier(num_layers=4, hidden_dim=32, seed=1)
    testing.vary_weights(pretrained, [s for s, _ in _sentences(16, seed=3)])
    pretrained.save(base / "pretrained.keras")
    return base


def _common(workdir, **changes):
    return kt.Config(**{"task": "sst2", "data_dir": str(workdir / "SST-2"),
                        "seq_len": 32, "batch_size": 16, "epochs": 1, "lr": 1e-3,
                        "output": str(workdir / "runs"), **changes})


@pytest.fixture(scope="module")
def teacher_run(workdir):
    """The teacher, fine-tuned through the command line."""
    assert cli.main(["finetune-teacher", "--model", str(workdir / "pretrained.keras"),
                     "--task", "sst2", "--data-dir", str(workdir / "SST-2"),
                     "--seq-len", "32", "--batch-size", "16", "--epochs", "1",
                     "--lr", "1e-3", "--output", str(workdir / "teachers")]) == 0
    (run,) = (workdir / "teachers").glob("teacher-sst2-*")
    return run


def test_finetune_writes_a_run(teacher_run):
    assert sorted(p.name for p in teacher_run.iterdir()) == [
        "config.json", "history.json", "metadata.json", "model.keras", "summary.json"]
    metadata = runs.read_metadata(teacher_run)
    assert metadata["task"] == "sst2" and metadata["text_fields"] == ["sentence"]
    assert metadata["label_names"] == ["negative", "positive"]
    assert metadata["distillation"] is None
    assert metadata["source"].endswith("pretrained.keras")
    config = json.loads((teacher_run / "config.json").read_text())
    assert config["stage"] == "finetune" and config["schedule"] is None
    summary = json.loads((teacher_run / "summary.json").read_text())
    assert 0.0 <= summary["dev"]["accuracy"] <= 1.0
    assert summary["encoder_parameters"] < summary["parameters"]


def test_finetune_reshuffles_every_epoch(workdir, monkeypatch):
    """Each epoch sees a new order (a cache after the shuffle would replay epoch 1's);
    also the labels-only baseline: stage "finetune" with a student shape."""
    seen = []

    def record(x, y):
        def note(ids):
            seen.extend(tuple(row[row > 0]) for row in ids.numpy())
            return ids
        ids = tf.py_function(note, [x["token_ids"]], x["token_ids"].dtype)
        return {**x, "token_ids": tf.ensure_shape(ids, x["token_ids"].shape)}, y

    task_datasets = kt.data.task_datasets

    def recorded(*args, **kwargs):
        data, dev = task_datasets(*args, **kwargs)
        return data.map(record), dev

    monkeypatch.setattr(kt.data, "task_datasets", recorded)
    config = _common(workdir, stage="finetune", teacher=str(workdir / "pretrained.keras"),
                     student_shape="1L-16H-32I", schedule="constant", epochs=2,
                     output=str(workdir / "baselines"))
    run = train.finetune(config)
    assert run.name.startswith("labels-sst2-")
    assert runs.load_model(run).backbone.num_layers == 1
    assert len(seen) == 2 * 64  # two epochs of the 64 training sentences
    first, second = seen[:64], seen[64:]
    assert sorted(first) == sorted(second)  # the same sentences...
    assert first != second                  # ...in another order


@pytest.mark.slow
def test_recipe_chains_stages_and_projections(workdir, teacher_run, monkeypatch,
                                              capsys):
    monkeypatch.setenv("KT_TEST_DATA", str(workdir))
    monkeypatch.delenv("KT_TEST_OUT", raising=False)
    recipe = workdir / "recipe.yaml"
    recipe.write_text(f"""
teacher: {teacher_run}
student_shape: 2L-16H-32I
output: ${{KT_TEST_OUT:-{workdir / "recipe-runs"}}}
backup_dir: {workdir / "backup"}
seq_len: 32
batch_size: 16
max_examples: 32
epochs: 1
lr: 0.001
stages:
  - stage: general                 # a comment with ${{UNSET_IN_A_COMMENT}}
    teacher: {workdir / "pretrained.keras"}
    corpus: ["${{KT_TEST_DATA}}/corpus.txt"]
  - stage: intermediate
    task: sst2
    data_dir: ${{KT_TEST_DATA}}/SST-2
  - stage: prediction
    task: sst2
    data_dir: ${{KT_TEST_DATA}}/SST-2
""")
    configs = train.load_recipe(recipe)
    assert [c.stage for c in configs] == ["general", "intermediate", "prediction"]
    assert configs[1].data_dir == f"{workdir}/SST-2"
    run_dirs = train.run_recipe(configs)
    assert all(r.parent == workdir / "recipe-runs" for r in run_dirs)
    # Each stage after the first starts from the previous stage's student ...
    for previous, run in zip(run_dirs, run_dirs[1:]):
        config = json.loads((run / "config.json").read_text())
        assert config["student"] == str(previous)
    # ... and from its projections W_e/W_h (saved by the stages that train them).
    general, intermediate, prediction = map(runs.load_projections, run_dirs)
    assert set(general) == set(intermediate) == {"embedding_projection",
                                                 "hidden_projection"}
    assert prediction is None
    out = capsys.readouterr().out
    assert f"embedding_projection, hidden_projection loaded from {run_dirs[0]}" in out
    # One backup folder per stage.
    assert sorted(p.name for p in (workdir / "backup").iterdir()) == [
        "stage-1-general", "stage-2-intermediate", "stage-3-prediction"]
    history = json.loads((run_dirs[0] / "history.json").read_text())
    trained = sum(history[k][0] for k in ("embedding_loss", "attention_loss",
                                          "hidden_loss"))
    np.testing.assert_allclose(history["loss"][0], trained, rtol=1e-5)  # no prediction
    assert "prediction_loss" in json.loads((run_dirs[2] / "history.json").read_text())
    a, b = (keras.saving.load_model(r / "model.keras") for r in run_dirs[1:])
    assert a.backbone.num_layers == b.backbone.num_layers == 2
    # The prediction stage started from the intermediate stage's student and moved it.
    assert not np.array_equal(a.output_dense.kernel.numpy(), b.output_dense.kernel.numpy())
    metadata = runs.read_metadata(run_dirs[2])
    assert metadata["task"] == "sst2" and metadata["text_fields"] == ["sentence"]
    assert metadata["label_names"] == ["negative", "positive"]
    assert metadata["teacher"] == str(teacher_run)
    assert metadata["source"] == str(run_dirs[1])
    assert metadata["distillation"] == {"stage": "prediction", "layer_map": "uniform",
                                        "temperature": 1.0}
    summary = json.loads((run_dirs[2] / "summary.json").read_text())
    assert summary["student_encoder_parameters"] < summary["teacher_encoder_parameters"]
    assert 0.0 <= summary["dev_student"]["accuracy"] <= 1.0


def test_distill_command_reads_a_train_file(workdir, teacher_run):
    """--train-file (e.g. augmented data) with a malformed row, skipped with
    --skip-malformed (without it, reading the file stops at that row)."""
    train_file = workdir / "augmented.tsv"
    _write_tsv(train_file, _sentences(40, seed=4), extra="a row\twith\tthree fields\n")
    argv = ["distill", "--stage", "intermediate", "--teacher", str(teacher_run),
            "--student-shape", "1L-16H-32I", "--task", "sst2",
            "--data-dir", str(workdir / "SST-2"), "--train-file", str(train_file),
            "--seq-len", "32", "--batch-size", "16", "--epochs", "1",
            "--output", str(workdir / "train-file-runs")]
    assert cli.main([*argv, "--skip-malformed"]) == 0
    (run,) = (workdir / "train-file-runs").iterdir()
    config = json.loads((run / "config.json").read_text())
    assert config["train_file"] == str(train_file) and config["skip_malformed"]
    assert json.loads((run / "history.json").read_text())["hidden_loss"][0] > 0


# --- recipes are checked whole, before anything runs ---------------------------------

def _recipe(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("teacher: t\nstages:\n  - stage: bogus\n",
     r"stage 1: Unknown stage 'bogus': use one of \['finetune', 'general', "
     r"'intermediate', 'prediction', 'joint'\]"),
    ("teacher: t\nstages:\n  - stage: general\n    corpus: [c]\n    learning_rate: 1\n",
     r"stage 1: unknown option\(s\) \['learning_rate'\]; the options are \['stage', "),
    ("teacher: t\nlearning_rate: 1\nstages:\n  - stage: general\n",
     r"\(top level\): unknown option\(s\) \['learning_rate'\]"),
    ("teacher: ${KT_UNSET_TEACHER}\nstages:\n  - stage: general\n",
     r"environment variable\(s\) \['KT_UNSET_TEACHER'\] are not set and have no "
     r"default"),
    ("stages:\n  - stage: general\n    corpus: [c]\n",
     r"stage 1: stage 'general' needs teacher=.*--teacher on the command line"),
    ("teacher: t\nstages:\n  - stage: general\n    corpus: [c]\n  - stage: prediction\n",
     r"stage 2: stage 'prediction' needs task=.*--task on the command line"),
    ("teacher: t\nstages: []\n", r"needs a non-empty `stages:` list"),
])
def test_recipe_errors_name_the_problem(tmp_path, monkeypatch, text, message):
    monkeypatch.delenv("KT_UNSET_TEACHER", raising=False)
    with pytest.raises(ValueError, match=message):
        train.load_recipe(_recipe(tmp_path, text))


def test_recipe_variables_and_base(tmp_path, monkeypatch):
    monkeypatch.setenv("KT_TEACHER", "bert_tiny")
    monkeypatch.delenv("KT_EPOCHS", raising=False)
    path = _recipe(tmp_path, "teacher: ${KT_TEACHER}\nepochs: ${KT_EPOCHS:-4}\n"
                   "stages:\n  - stage: general\n    corpus: [c]\n"
                   "  - stage: general\n    corpus: [d]\n    seed: 7\n")
    base = kt.Config(student="runs/general-old", seed=3, lr=1e-4)
    first, second = train.load_recipe(path, base=base)
    assert first.teacher == second.teacher == "bert_tiny"
    assert first.epochs == 4 and isinstance(first.epochs, int)
    assert (first.lr, first.seed, second.seed) == (1e-4, 3, 7)
    # The base student starts the first stage; the second chains from it.
    assert (first.student, second.student) == ("runs/general-old", None)


def test_a_stage_without_a_teacher_names_both_interfaces():
    with pytest.raises(ValueError, match=r"teacher=<.*\(--teacher on the command line"):
        train.distill_stage(kt.Config(stage="intermediate", task="sst2"))
    with pytest.raises(ValueError, match=r"teacher=<.*\(--model on the command line"):
        train.finetune(kt.Config(stage="finetune", task="sst2"))


def test_cosine_schedule_warms_up_then_decays_to_zero():
    # 10 batches of unknown cardinality (as bucketed data is) x 2 epochs = 20 steps.
    data = tf.data.Dataset.range(10).filter(lambda x: True)
    config = kt.Config(lr=1e-3, epochs=2, schedule="cosine", warmup=0.1)
    schedule = train.learning_rate(config, data)
    lrs = [float(schedule(step)) for step in (0, 1, 2, 11, 20)]
    np.testing.assert_allclose(lrs, [0.0, 5e-4, 1e-3, 5e-4, 0.0], atol=1e-9)
    assert train.learning_rate(config.replace(schedule="constant"), data) == 1e-3
    # Fine-tuning's default is the cosine schedule; distillation's the constant rate.
    assert isinstance(train.learning_rate(config.replace(stage="finetune", schedule=None),
                                          data), keras.optimizers.schedules.CosineDecay)
    assert train.learning_rate(config.replace(schedule=None), data) == 1e-3


@pytest.mark.parametrize("name", ["sst2_quick.yaml", "sst2_full.yaml", "sst2_best.yaml"])
def test_example_recipes_are_valid(name, tmp_path, monkeypatch):
    (tmp_path / "sst2").mkdir()
    (tmp_path / "train.tsv").write_text("sentence\tlabel\n")
    for variable, value in {"KT_DATA_DIR": tmp_path, "TEACHER": "teacher-run",
                            "PRETRAINED": "pretrained", "CORPUS": "wiki/*.txt",
                            "AUGMENTED": tmp_path / "train.tsv"}.items():
        monkeypatch.setenv(variable, str(value))
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "configs" / name
    configs = train.load_recipe(path)
    assert [c.stage for c in configs] == ["general", "intermediate", "prediction"]
    assert configs[0].teacher == "pretrained" and configs[2].teacher == "teacher-run"
    assert configs[1].train_file == str(tmp_path / "train.tsv")
