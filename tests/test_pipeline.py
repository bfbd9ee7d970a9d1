"""`keras-tinybert distill` end to end on tiny models: runs, chaining, resumption."""

import json
import pathlib

import keras
import numpy as np
import pytest

from keras_tinybert import cli, pipeline, testing
from keras_tinybert.commands.distill import parse_shape


def test_parse_shape():
    assert parse_shape("4L-312H-1200I") == {"num_layers": 4, "hidden_dim": 312,
                                            "intermediate_dim": 1200, "num_heads": None}
    assert parse_shape("2L-64H-128I-4A")["num_heads"] == 4
    with pytest.raises(ValueError, match="4L-312H-1200I"):
        parse_shape("4 layers")


def test_new_run_dirs_never_collide(tmp_path):
    a, b = pipeline.new_run_dir(tmp_path, "x"), pipeline.new_run_dir(tmp_path, "x")
    assert a != b and a.is_dir() and b.is_dir()


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a `.keras` model"):
        pipeline.load_model(tmp_path)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("teacher")
    teacher = testing.tiny_classifier(num_layers=4, hidden_dim=32, seed=1)
    testing.vary_weights(teacher, ["a good film", "a bad film"])
    teacher.save(path / "model.keras")
    (path / "metadata.json").write_text(json.dumps({"label_names": ["negative", "positive"]}))
    return path


@pytest.mark.integration
def test_distill_stages_chain_on_sst2(teacher_dir, shared_data, tmp_path):
    runs = tmp_path / "runs"
    common = ["--teacher", str(teacher_dir), "--task", "sst2",
              "--data-dir", str(shared_data / "sst2"), "--max-examples", "64",
              "--seq-len", "32", "--batch-size", "16", "--epochs", "1",
              "--lr", "1e-3", "--output", str(runs)]
    assert cli.main(["distill", "--stage", "intermediate",
                     "--student-shape", "2L-16H-32I", *common]) == 0
    (first,) = list(runs.iterdir())
    history = json.loads((first / "history.json").read_text())
    assert {"loss", "hidden_loss", "attention_loss", "embedding_loss"} <= set(history)
    summary = json.loads((first / "summary.json").read_text())
    assert summary["student_encoder_parameters"] < summary["teacher_encoder_parameters"]
    assert 0.0 <= summary["dev_student"]["accuracy"] <= 1.0
    meta = json.loads((first / "metadata.json").read_text())
    assert meta["label_names"] == ["negative", "positive"]

    assert cli.main(["distill", "--stage", "prediction", "--student", str(first),
                     *common]) == 0
    second = [p for p in runs.iterdir() if p != first][0]
    a = keras.saving.load_model(first / "student.keras")
    b = keras.saving.load_model(second / "student.keras")
    assert a.backbone.num_layers == b.backbone.num_layers == 2
    # The prediction stage started from the intermediate stage's student and moved it.
    assert not np.array_equal(a.output_dense.kernel.numpy(), b.output_dense.kernel.numpy())
    assert "prediction_loss" in json.loads((second / "history.json").read_text())


@pytest.mark.integration
def test_distill_general_on_wikitext_with_backup(teacher_dir, shared_data, tmp_path):
    runs, backup = tmp_path / "runs", tmp_path / "backup"
    args = ["distill", "--stage", "general", "--teacher", str(teacher_dir),
            "--corpus", str(shared_data / "wikitext-2" / "valid.txt"),
            "--student-shape", "2L-16H-32I", "--max-examples", "64", "--seq-len", "32",
            "--batch-size", "16", "--epochs", "1", "--backup-dir", str(backup),
            "--save-freq", "2", "--output", str(runs)]
    assert cli.main(args) == 0
    (run,) = list(runs.iterdir())
    history = json.loads((run / "history.json").read_text())
    assert history["resumed_from_step"] == 0
    trained = sum(history[k][0] for k in ("embedding_loss", "attention_loss", "hidden_loss"))
    np.testing.assert_allclose(history["loss"][0], trained, rtol=1e-5)  # no prediction
    assert (backup / "backup.weights.h5").exists()


@pytest.mark.integration
def test_recipe_runs_stages_in_order(teacher_dir, shared_data, tmp_path, monkeypatch,
                                     capsys):
    monkeypatch.setenv("KT_DATA_DIR", str(shared_data))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"""
teacher: {teacher_dir}
student_shape: 2L-16H-32I
output: {tmp_path / "runs"}
seq_len: 32
batch_size: 16
max_examples: 32
epochs: 1
lr: 0.001
stages:
  - stage: general
    corpus: ["${{KT_DATA_DIR}}/wikitext-2/valid.txt"]
  - stage: intermediate
    task: sst2
    data_dir: ${{KT_DATA_DIR}}/sst2
  - stage: prediction
    task: sst2
    data_dir: ${{KT_DATA_DIR}}/sst2
""")
    from keras_tinybert.commands import distill

    args = cli.build_parser().parse_args(["distill", "--config", str(recipe)])
    runs = distill.run_recipe(args)
    assert [json.loads((pathlib.Path(r) / "config.json").read_text())["stage"]
            for r in runs] == ["general", "intermediate", "prediction"]
    # Each stage after the first starts from the previous stage's student.
    for previous, run in zip(runs, runs[1:]):
        config = json.loads((pathlib.Path(run) / "config.json").read_text())
        assert config["student"] == previous
    # ... and from its projections W_e/W_h (saved by the stages that train them).
    general, intermediate, prediction = map(pipeline.load_projections, runs)
    assert set(general) == set(intermediate) == {"embedding_projection",
                                                 "hidden_projection"}
    assert prediction is None
    out = capsys.readouterr().out
    assert f"embedding_projection, hidden_projection loaded from {runs[0]}" in out


def test_recipe_with_unknown_option(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("teacher: x\nstages:\n  - stage: general\n    learning_rate: 1\n")
    args = cli.build_parser().parse_args(["distill", "--config", str(recipe)])
    from keras_tinybert.commands import distill

    with pytest.raises(SystemExit, match="unknown option.*learning_rate"):
        distill.run_recipe(args)


@pytest.mark.integration
def test_finetune_teacher_and_labels_only_baseline(teacher_dir, shared_data, tmp_path):
    runs = tmp_path / "runs"
    common = ["--model", str(teacher_dir), "--task", "sst2", "--data-dir",
              str(shared_data / "sst2"), "--max-examples", "64", "--seq-len", "32",
              "--batch-size", "16", "--epochs", "1", "--output", str(runs)]
    assert cli.main(["finetune-teacher", *common]) == 0
    assert cli.main(["finetune-teacher", "--student-shape", "1L-16H-32I", *common]) == 0
    teacher_run = next(runs.glob("teacher-sst2-*"))
    labels_run = next(runs.glob("labels-sst2-*"))
    assert json.loads((teacher_run / "metadata.json").read_text())["label_names"] == [
        "negative", "positive"]
    summary = json.loads((teacher_run / "summary.json").read_text())
    assert 0.0 <= summary["dev"]["accuracy"] <= 1.0
    small = pipeline.load_model(labels_run)
    assert small.backbone.num_layers == 1 and small.backbone.hidden_dim == 16


@pytest.mark.integration
def test_distill_reads_a_train_file(teacher_dir, shared_data, tmp_path):
    """--train-file: e.g. the augmented TSV; here SST-2's dev file stands in."""
    runs = tmp_path / "runs"
    assert cli.main(["distill", "--stage", "intermediate", "--teacher", str(teacher_dir),
                     "--student-shape", "1L-16H-32I", "--task", "sst2",
                     "--data-dir", str(shared_data / "sst2"),
                     "--train-file", str(shared_data / "sst2" / "dev.tsv"),
                     "--max-examples", "48", "--seq-len", "32", "--batch-size", "16",
                     "--epochs", "1", "--output", str(runs)]) == 0
    (run,) = list(runs.iterdir())
    config = json.loads((run / "config.json").read_text())
    assert config["train_file"].endswith("dev.tsv")
    assert json.loads((run / "history.json").read_text())["hidden_loss"][0] > 0


def test_cosine_schedule_warms_up_then_decays_to_zero():
    import argparse

    import tensorflow as tf

    from keras_tinybert.commands.distill import _learning_rate

    # 10 batches of unknown cardinality (as bucketed data is) x 2 epochs = 20 steps.
    train = tf.data.Dataset.range(10).filter(lambda x: True)
    args = argparse.Namespace(lr=1e-3, epochs=2, schedule="cosine", warmup=0.1)
    schedule = _learning_rate(args, train)
    lrs = [float(schedule(step)) for step in (0, 1, 2, 11, 20)]
    np.testing.assert_allclose(lrs, [0.0, 5e-4, 1e-3, 5e-4, 0.0], atol=1e-9)
    assert _learning_rate(argparse.Namespace(lr=1e-3, schedule="constant"), train) == 1e-3
