"""Figures for docs/RESULTS.md: loss curves of runs and accuracy against model size.

    from keras_tinybert import plots
    plots.plot_losses(["runs/distill-intermediate-...", "runs/distill-prediction-..."],
                      "docs/losses_tinybert4.png", title="TinyBERT4 on SST-2")
    plots.plot_accuracy_vs_size(points, "docs/accuracy_vs_size.png", baseline=0.97)

matplotlib is imported lazily with the Agg backend (no display needed); it is in the
`dev` extra, not a dependency of the package itself.
"""

import json
import math
import pathlib

# kind -> (marker, colour, legend label) of a point in `plot_accuracy_vs_size`.
KINDS = {
    "teacher": ("*", "black", "teacher"),
    "distilled": ("o", "tab:blue", "TinyBERT distilled"),
    "labels-only": ("s", "tab:orange", "same size, labels only"),
}
LOG_SPAN = 100.0  # log-scale y when a panel's positive values span more than 2 decades
MARKER_EPOCHS = 20  # mark every epoch when a run has at most this many


def _pyplot():
    """matplotlib.pyplot on the Agg backend, or an error that says how to install it."""
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "keras_tinybert.plots needs matplotlib: pip install matplotlib "
            '(or pip install -e ".[dev]").'
        ) from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _read_json(path, what):
    if not path.exists():
        raise FileNotFoundError(f"{path.parent} has no {path.name}: {what}")
    return json.loads(path.read_text())


def read_history(run_dir):
    """`(stage, history)` of a run: the stage name and history.json's per-epoch lists.

    Non-list keys of history.json (e.g. "resumed_from_step") are dropped.
    """
    run_dir = pathlib.Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"No run directory at {run_dir}: pass a folder created by "
            "`keras-tinybert distill` or `finetune-teacher`."
        )
    history = _read_json(
        run_dir / "history.json",
        "is it a finished run? Runs write history.json when training ends.",
    )
    history = {k: v for k, v in history.items() if isinstance(v, list) and v}
    if not history:
        raise ValueError(f"{run_dir}/history.json holds no per-epoch values to plot.")
    return run_stage(run_dir), history


def run_stage(run_dir):
    """The stage a run trained: config.json's distillation "stage", else the kind of
    fine-tuning ("labels-only" with a "student_shape", else "fine-tuning")."""
    path = pathlib.Path(run_dir) / "config.json"
    config = json.loads(path.read_text()) if path.exists() else {}
    if config.get("stage") not in (None, "finetune"):
        return str(config["stage"])
    if config.get("student_shape"):
        return "labels-only"
    return "fine-tuning" if config else pathlib.Path(run_dir).name


def loss_names(history):
    """The training loss components of a history ("loss", "hidden_loss", ...), sorted."""
    return sorted(k for k in history if k.endswith("loss") and not k.startswith("val_"))


def losses_figure(run_dirs, title=None):
    """A matplotlib Figure with one panel per run (see `plot_losses`)."""
    plt = _pyplot()
    runs = [read_history(run_dir) for run_dir in run_dirs]
    if not runs:
        raise ValueError("plot_losses needs at least one run directory.")
    columns = min(len(runs), 3)
    rows = math.ceil(len(runs) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.5 * rows),
                             squeeze=False)
    flat = list(axes.flat)
    for ax, (stage, history), run_dir in zip(flat, runs, run_dirs):
        _loss_panel(ax, history, f"{stage} ({pathlib.Path(run_dir).name})")
    for ax in flat[len(runs):]:
        fig.delaxes(ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _loss_panel(ax, history, title):
    """Every loss component against epoch: train solid, validation dashed and hollow
    (a single epoch has no line), one colour per component."""
    from matplotlib.ticker import MaxNLocator

    values, epochs_seen = [], 1
    for i, name in enumerate(loss_names(history)):
        color = f"C{i % 10}"
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            series = history.get(key)
            if not series:
                continue
            epochs = range(1, len(series) + 1)
            marker = "o" if len(series) <= MARKER_EPOCHS else None
            ax.plot(epochs, series, linestyle=style, marker=marker, color=color,
                    markerfacecolor=color if style == "-" else "none",
                    label=key if style == "-" else f"_{key}")  # one legend row each
            values.extend(series)
            epochs_seen = max(epochs_seen, len(series))
    positive = [v for v in values if v is not None and v > 0]
    if positive and max(positive) / min(positive) > LOG_SPAN:
        ax.set_yscale("log")
    if epochs_seen <= MARKER_EPOCHS:
        ax.set_xticks(range(1, epochs_seen + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, epochs_seen + 0.5)  # a single epoch gets a readable axis too
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if values:
        ax.legend(fontsize=7, title="train solid, val dashed/hollow", title_fontsize=7)


def plot_losses(run_dirs, path, title=None):
    """Write the loss curves of `run_dirs` (one panel per run/stage) to `path`.

    Every `*loss` key of each run's history.json is drawn against epoch, training
    solid and validation (`val_*`) dashed, so the stages of a recipe read side by
    side; the y axis is logarithmic when a panel's values span more than 2 decades
    (attention losses dwarf prediction losses). Returns `path`.
    """
    return _save(losses_figure(run_dirs, title), path)


def accuracy_vs_size_figure(points, metric="accuracy", baseline=None):
    """A matplotlib Figure of `points` (see `plot_accuracy_vs_size`)."""
    plt = _pyplot()
    if not points:
        raise ValueError("plot_accuracy_vs_size needs at least one point.")
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for kind, (marker, color, label) in KINDS.items():
        chosen = [p for p in points if _kind(p) == kind]
        if chosen:
            ax.scatter([p["params"] / 1e6 for p in chosen], [p[metric] for p in chosen],
                       marker=marker, color=color, s=120 if marker == "*" else 50,
                       label=label, zorder=3)
    seen = {}  # models at the same spot get their labels stacked, not overprinted
    for p in points:
        spot = (round(p["params"] / 1e6, 3), round(p[metric], 4))
        seen[spot] = seen.get(spot, -1) + 1
        ax.annotate(p["name"], (p["params"] / 1e6, p[metric]), fontsize=8,
                    textcoords="offset points", xytext=(6, 4 - 10 * seen[spot]))
    if baseline is not None:
        _baseline_line(ax, points, metric, baseline)
    _millions_axis(ax)
    ax.set_xlabel("encoder parameters (millions, log scale)")
    ax.set_ylabel(f"dev {metric}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _millions_axis(ax):
    """Log x with plain numbers (0.03, 4.7, 85) and room for the names beside points."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    ax.margins(x=0.25, y=0.1)
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))


def _kind(point):
    kind = point.get("kind")
    if kind not in KINDS:
        raise ValueError(
            f"Point {point.get('name')!r} has kind {kind!r}; use one of {list(KINDS)}."
        )
    return kind


def _baseline_line(ax, points, metric, fraction):
    """A horizontal line at `fraction` of the teacher's `metric`."""
    teachers = [p for p in points if p.get("kind") == "teacher"]
    if not teachers:
        raise ValueError(
            "baseline= is a fraction of the teacher's score, but no point has "
            "kind 'teacher'; add the teacher or pass baseline=None."
        )
    level = fraction * teachers[0][metric]
    ax.axhline(level, color="gray", linestyle=":",
               label=f"{fraction:.0%} of teacher ({level:.3f})")


def plot_accuracy_vs_size(points, path, metric="accuracy", baseline=None):
    """Write dev `metric` against encoder parameters to `path`; return `path`.

    `points`: dicts {"name", "params" (encoder parameters), metric, "kind"} with kind
    "teacher", "distilled" or "labels-only" (marker and colour by kind, each point
    labelled with its name). x is log-scale in millions. `baseline`, e.g. 0.97, draws a
    horizontal line at that fraction of the teacher's score (the paper's "96.8% of
    BERT-base" reads off it).
    """
    return _save(accuracy_vs_size_figure(points, metric, baseline), path)


def _save(fig, path):
    plt = _pyplot()
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path
