"""`keras-tinybert evaluate` on a tiny classifier saved as a run directory.

The printed accuracy must equal a NumPy recomputation from the model's own logits;
latency and export sizes must be present and positive (never compared to numbers).
"""

import json
import re

import numpy as np
import pytest

from keras_tinybert import cli, testing
from keras_tinybert.data.glue_tsv import read_glue_tsv

SENTENCES = [
    "a good film", "a bad film", "the plot is boring", "brilliant and funny",
    "the worst movie ever", "i loved the music", "dull , slow and long",
    "a charming story", "not funny at all", "the actors were great",
    "an ugly , stupid script", "warm heart and smart work",
]


def _save_run(run_dir, model):
    """A run directory as distill writes it: student.keras + metadata.json."""
    run_dir.mkdir()
    model.save(run_dir / "student.keras")
    (run_dir / "metadata.json").write_text(
        json.dumps({"label_names": ["negative", "positive"]}))
    return run_dir


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """(run dir, model, synthetic GLUE SST-2 folder) of a classifier with varied logits."""
    base = tmp_path_factory.mktemp("evaluate")
    model = testing.vary_weights(testing.tiny_classifier(sequence_length=32), SENTENCES)
    data_dir = base / "SST-2"
    data_dir.mkdir()
    rows = [f"{s}\t{i % 2}" for i, s in enumerate(SENTENCES)]
    (data_dir / "dev.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    return _save_run(base / "run", model), model, data_dir


def _numpy_accuracy(model, sentences, labels):
    logits = model.predict(np.array(sentences), batch_size=64, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))


def _printed(out, key):
    return float(re.search(rf"^{key}: ([0-9.,]+)", out, re.M).group(1).replace(",", ""))


def test_evaluate_prints_numpy_accuracy_and_latency(tiny_run, tmp_path, capsys):
    run_dir, model, data_dir = tiny_run
    out_json = tmp_path / "result.json"
    assert cli.main(["evaluate", "--model", str(run_dir), "--task", "sst2",
                     "--data-dir", str(data_dir), "--seq-len", "32", "--latency",
                     "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    expected = _numpy_accuracy(model, SENTENCES, [i % 2 for i in range(len(SENTENCES))])
    assert 0.0 < expected < 1.0  # the logits really depend on the sentence
    assert _printed(out, "accuracy") == pytest.approx(expected, abs=5e-5)
    result = json.loads(out_json.read_text())
    assert result["metrics"]["accuracy"] == pytest.approx(expected)
    assert result["encoder_parameters"] == _printed(out, "encoder_parameters")
    assert 0 < result["encoder_parameters"] < result["parameters"]
    assert result["latency_ms_batch1"] > 0 and result["latency_ms_batch32"] > 0


@pytest.mark.tensorflow_only  # exports are TensorFlow graphs
def test_export_sizes_are_positive(tiny_run):
    from keras_tinybert import evaluation as evaluate

    run_dir, _, data_dir = tiny_run
    model = evaluate.load(run_dir)
    sizes = evaluate.export_sizes_mb(model, "sst2", data_dir, seq_len=32)
    assert sizes["saved_model_mb"] > 0 and sizes["tflite_int8_mb"] > 0


def test_export_on_another_backend_is_a_clear_error(tiny_run, tmp_path):
    """Under JAX (scripts/test.sh's second run) an export names the backend and the fix,
    and writes nothing."""
    import keras

    from keras_tinybert import evaluation, export

    if keras.backend.backend() == "tensorflow":
        pytest.skip("exports work on TensorFlow; this checks another backend's error")
    model = evaluation.load(tiny_run[0])
    with pytest.raises(ValueError, match="runs 'jax'.*KERAS_BACKEND=tensorflow"):
        export.saved_model(model, tmp_path / "serving")
    with pytest.raises(ValueError, match="TensorFlow backend"):
        evaluation.evaluate_model(tiny_run[0], "sst2", tiny_run[2], 32, export_sizes=True)
    assert not list(tmp_path.iterdir())


def test_errors_name_the_problem(tiny_run, tmp_path, capsys):
    run_dir, _, data_dir = tiny_run
    assert cli.main(["evaluate", "--model", str(tmp_path / "nope"),
                     "--data-dir", str(data_dir)]) == 2
    assert "No run or model" in capsys.readouterr().err
    (tmp_path / "unfinished").mkdir()
    assert cli.main(["evaluate", "--model", str(tmp_path / "unfinished"),
                     "--data-dir", str(data_dir)]) == 2
    assert "finished run" in capsys.readouterr().err
    assert cli.main(["evaluate", "--model", str(run_dir), "--data-dir", str(data_dir),
                     "--seq-len", "512"]) == 2
    assert "--seq-len 64 or less" in capsys.readouterr().err


@pytest.mark.integration
def test_evaluate_on_sst2_dev_matches_numpy(tiny_run, shared_data, capsys):
    run_dir, model, _ = tiny_run
    assert cli.main(["evaluate", "--model", str(run_dir), "--task", "sst2",
                     "--data-dir", str(shared_data / "sst2"), "--seq-len", "32"]) == 0
    table = read_glue_tsv(shared_data / "sst2" / "dev.tsv", "sst2")
    (sentences,) = table.texts()
    expected = _numpy_accuracy(model, list(sentences), table.labels())
    assert _printed(capsys.readouterr().out, "accuracy") == pytest.approx(expected, abs=5e-5)


def _results_script():
    """scripts/results.py as a module (scripts/ is not a package)."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "results.py"
    spec = importlib.util.spec_from_file_location("results_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_script_from_bare_runs(tiny_run, tmp_path, capsys):
    """Roles inferred from config.json: teacher, a 2-stage student, a baseline."""
    _, model, data_dir = tiny_run
    small = testing.vary_weights(testing.tiny_classifier(num_layers=1, sequence_length=32),
                                 SENTENCES, seed=1)
    runs = {}
    for name, net in [("teacher", model), ("labels", small), ("inter", small),
                      ("pred", small)]:
        runs[name] = _save_run(tmp_path / name, net)
        (runs[name] / "history.json").write_text(json.dumps({"loss": [1.0, 0.5]}))
    configs = {"teacher": {"task": "sst2", "seq_len": 32},
               "labels": {"student_shape": "1L-32H-64I"},
               "inter": {"stage": "intermediate"},
               "pred": {"stage": "prediction", "student": str(runs["inter"])}}
    for name, config in configs.items():
        (runs[name] / "config.json").write_text(json.dumps(config))
    out = tmp_path / "docs"
    assert _results_script().main(
        ["--runs", *map(str, runs.values()), "--data-dir", str(data_dir),
         "--out", str(out), "--skip-latency", "--skip-export"]) == 0
    table = capsys.readouterr().out
    report = json.loads((out / "results.json").read_text())
    kinds = {m["name"]: (m["kind"], m["stages"]) for m in report["models"]}
    assert kinds == {"teacher": ("teacher", ["fine-tuning"]),
                     "distilled 1L-32H": ("distilled", ["intermediate", "prediction"]),
                     "labels-only 1L-32H": ("labels-only", ["labels-only"])}
    assert report["models"][0]["pct_of_teacher"] == pytest.approx(100.0)
    assert sorted(p.name for p in out.glob("*.png")) == [
        "accuracy_vs_size.png", "losses_distilled_1l_32h.png",
        "losses_labels_only_1l_32h.png", "losses_teacher.png"]
    assert table.count("\n| ") == 4  # separator + 3 models after the header

    # --reuse: a model with the same name and runs keeps its earlier record.
    report["models"][0]["metrics"]["accuracy"] = 0.123
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps(report))
    assert _results_script().main(
        ["--runs", *map(str, runs.values()), "--data-dir", str(data_dir), "--out",
         str(tmp_path / "again"), "--skip-latency", "--skip-export", "--reuse", str(earlier)]) == 0
    again = json.loads((tmp_path / "again" / "results.json").read_text())["models"]
    assert [m["metrics"]["accuracy"] for m in again] == [m["metrics"]["accuracy"] for m in report["models"]]
