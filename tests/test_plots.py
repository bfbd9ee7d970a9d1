"""keras_tinybert.plots on synthetic runs: PNGs written, one panel per run, clear errors."""

import json

import pytest

pytest.importorskip("matplotlib")

from keras_tinybert import plots  # noqa: E402


def _run(base, name, history, config=None):
    """A fake run directory holding history.json (and config.json)."""
    run_dir = base / name
    run_dir.mkdir()
    (run_dir / "history.json").write_text(json.dumps(history))
    if config is not None:
        (run_dir / "config.json").write_text(json.dumps(config))
    return run_dir


@pytest.fixture
def stage_runs(tmp_path):
    intermediate = _run(tmp_path, "distill-intermediate-1", {
        "loss": [30.0, 3.0, 0.2], "attention_loss": [25.0, 2.5, 0.15],
        "hidden_loss": [4.0, 0.4, 0.04], "embedding_loss": [1.0, 0.1, 0.01],
        "accuracy": [0.5, 0.6, 0.7],
        "val_loss": [31.0, 3.2, 0.3], "val_attention_loss": [26.0, 2.6, 0.2],
        "resumed_from_step": 120,
    }, {"stage": "intermediate"})
    prediction = _run(tmp_path, "distill-prediction-1", {
        "loss": [0.6], "prediction_loss": [0.6], "val_loss": [0.65],
        "val_prediction_loss": [0.65], "accuracy": [0.8],
    }, {"stage": "prediction"})
    teacher = _run(tmp_path, "teacher-sst2-1", {"loss": [0.5, 0.3]}, {"task": "sst2"})
    return [intermediate, prediction, teacher]


def _is_png(path):
    return path.exists() and path.stat().st_size > 1000 and \
        path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_losses_writes_one_panel_per_run(stage_runs, tmp_path):
    out = tmp_path / "docs" / "losses_student.png"
    assert plots.plot_losses(stage_runs, out, title="student") == out
    assert _is_png(out)
    fig = plots.losses_figure(stage_runs, title="student")
    assert len(fig.axes) == 3
    titles = [ax.get_title() for ax in fig.axes]
    assert [t.split()[0] for t in titles] == ["intermediate", "prediction", "fine-tuning"]


def test_loss_panel_lines_scale_and_markers(stage_runs):
    fig = plots.losses_figure(stage_runs[:2])
    intermediate, prediction = fig.axes
    labels = {line.get_label().lstrip("_"): line for line in intermediate.get_lines()}
    # accuracy is not a loss; a train curve is solid, its validation dashed.
    assert set(labels) == {"loss", "val_loss", "attention_loss", "val_attention_loss",
                           "hidden_loss", "embedding_loss"}
    assert labels["loss"].get_linestyle() == "-"
    assert labels["val_loss"].get_linestyle() == "--"
    assert labels["val_loss"].get_color() == labels["loss"].get_color()
    assert intermediate.get_yscale() == "log"  # 30 .. 0.01: more than 2 decades
    assert prediction.get_yscale() == "linear"
    assert all(line.get_marker() == "o" for line in prediction.get_lines())


def test_plot_accuracy_vs_size(tmp_path):
    points = [
        {"name": "BERT-base", "params": 85e6, "accuracy": 0.93, "kind": "teacher"},
        {"name": "TinyBERT4", "params": 4.7e6, "accuracy": 0.92, "kind": "distilled"},
        {"name": "4L labels", "params": 4.7e6, "accuracy": 0.87, "kind": "labels-only"},
    ]
    out = tmp_path / "accuracy_vs_size.png"
    assert plots.plot_accuracy_vs_size(points, out, baseline=0.97) == out
    assert _is_png(out)
    fig = plots.accuracy_vs_size_figure(points, baseline=0.97)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert [line.get_ydata()[0] for line in ax.get_lines()] == [pytest.approx(0.97 * 0.93)]
    assert len(ax.texts) == 3


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="No run directory"):
        plots.plot_losses([tmp_path / "missing"], tmp_path / "x.png")
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(FileNotFoundError, match="history.json"):
        plots.plot_losses([tmp_path / "unfinished"], tmp_path / "x.png")
    point = {"name": "x", "params": 1e6, "accuracy": 0.5, "kind": "distilled"}
    with pytest.raises(ValueError, match="no point has kind 'teacher'"):
        plots.plot_accuracy_vs_size([point], tmp_path / "y.png", baseline=0.97)
    with pytest.raises(ValueError, match="kind"):
        plots.plot_accuracy_vs_size([{**point, "kind": "big"}], tmp_path / "y.png")
