"""Turn runs into docs/RESULTS.md's numbers: results.json, two figures, a Markdown table.

    python scripts/results.py --runs runs/teacher-sst2-* runs/distill-* --out docs/
    python scripts/results.py --manifest results.json --out docs/

Each model's *final* run is evaluated with `keras-tinybert evaluate --json` (dev
metric, total and encoder parameters, median CPU latency at batch 1 / 32, MB of a float
SavedModel and of an int8 TFLite export). Written to `--out`:

- `results.json`: the task, metric and one record per model (name, kind, stages, runs
  and the evaluate numbers, plus params ratio and % of the teacher);
- `losses_<name>.png`: one panel per stage run of each model (`plots.plot_losses`);
- `accuracy_vs_size.png`: dev metric against encoder parameters, with a line at 97%
  of the teacher (`plots.plot_accuracy_vs_size`);

and the Markdown table is printed (model, stages, encoder params, params ratio to the
teacher, dev metric, % of teacher, int8 TFLite MB, latency ms at batch 1 / 32).

Manifest (JSON; paths relative to the current directory; only "teacher" or one other
model is required):

    {
      "task": "sst2",                        # optional, default: the runs' config.json
      "data_dir": "../shared/data/sst2",     # optional, default: the runs' config.json
      "seq_len": 128,                        # optional (default 128)
      "teacher": {"name": "BERT-base", "run": "runs/teacher-sst2-..."},
      "students": [                          # distilled: stage runs in training order,
        {"name": "TinyBERT4",                #   the last one holds the final student
         "stages": ["runs/distill-general-...", "runs/distill-intermediate-...",
                    "runs/distill-prediction-..."]}
      ],
      "baselines": [                         # same size, trained on labels only
        {"name": "4L labels only", "run": "runs/teacher-sst2-..."}
      ]
    }

"teacher" may also be a bare run path (then it is named "teacher"). With `--runs`
instead of a manifest, roles come from each run's config.json: `finetune-teacher` runs
are the teacher (or a labels-only baseline when they have a "student_shape"),
`distill` runs are chained into students through their "student" argument (a stage
continues the run it started from), and names are made from the model shapes.
"""

import argparse
import contextlib
import json
import pathlib
import re
import sys
import tempfile

from keras_tinybert import cli, plots

BASELINE = 0.97  # the horizontal line of the size plot: 97% of the teacher's score


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--runs", nargs="+", help="run directories (roles inferred)")
    source.add_argument("--manifest", help="a JSON manifest (see this script's docstring)")
    parser.add_argument("--out", default="docs", help="folder for results.json and PNGs")
    parser.add_argument("--task", help="GLUE task (default: manifest / run config)")
    parser.add_argument("--data-dir", help="local GLUE folder (default: manifest / run config)")
    parser.add_argument("--seq-len", type=int,
                        help="default: manifest, else the runs' config.json, else 128")
    parser.add_argument("--skip-latency", action="store_true", help="no latency timing")
    parser.add_argument("--skip-export", action="store_true", help="no export sizes")
    parser.add_argument("--reuse", help="an earlier results.json: models with the same "
                        "runs keep its numbers instead of being re-evaluated")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        manifest = read_manifest(args.manifest) if args.manifest else manifest_from_runs(args.runs)
        settings = _settings(args, manifest)
        models = _entries(manifest)
        for _, _, runs in models:  # fail before the slow part, not after it
            for run in runs:
                plots.read_history(run)
        earlier = _earlier_records(args.reuse)
        entries = [_reused(earlier.get(_key(entry)), entry)
                   or _evaluate_entry(entry, settings, args) for entry in models]
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    _name_unnamed(entries)
    _compare_to_teacher(entries, settings["metric"])
    out = pathlib.Path(args.out)
    write_outputs(entries, settings, out)
    print(markdown_table(entries, settings["metric"]))
    return 0


# --- which runs: a manifest or roles inferred from config.json ----------------------

def read_manifest(path):
    """The manifest at `path`, checked: runs exist, roles are known."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No manifest at {path}; see `scripts/results.py --help`.")
    manifest = json.loads(path.read_text())
    unknown = set(manifest) - {"task", "data_dir", "seq_len", "teacher", "students", "baselines"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; see the script's docstring.")
    if isinstance(manifest.get("teacher"), str):
        manifest["teacher"] = {"name": "teacher", "run": manifest["teacher"]}
    return manifest


def manifest_from_runs(run_dirs):
    """A manifest from bare run directories, roles read from each config.json."""
    configs = {pathlib.Path(r).resolve(): _config(r) for r in run_dirs}
    manifest = {"students": [], "baselines": []}
    distill = {run: c for run, c in configs.items()
               if c.get("stage") not in (None, "finetune")}
    for run, config in configs.items():
        if run in distill:
            continue
        if config.get("student_shape"):
            manifest["baselines"].append({"run": str(run)})
        elif "teacher" in manifest:
            raise ValueError(f"Two teacher runs ({manifest['teacher']['run']}, {run}); "
                             "pass one, or write a manifest.")
        else:
            manifest["teacher"] = {"run": str(run)}
    manifest["students"] = [{"stages": [str(r) for r in chain]} for chain in _chains(distill)]
    for key in ("task", "data_dir", "seq_len"):
        manifest[key] = next((c[key] for c in configs.values() if c.get(key)), None)
    return manifest


def _config(run_dir):
    run_dir = pathlib.Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"No run directory at {run_dir}.")
    path = run_dir / "config.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{run_dir} has no config.json, so its role is unknown: pass runs made by "
            "finetune-teacher / distill, or list the runs in a --manifest.")
    return json.loads(path.read_text())


def _chains(distill):
    """Distill runs grouped into students: each run follows the run it started from."""
    parent = {}
    for run, config in distill.items():
        start = config.get("student")
        start = pathlib.Path(start).resolve() if start else None
        parent[run] = start if start in distill else None
    children = {p for p in parent.values() if p is not None}
    chains = []
    for last in sorted(run for run in distill if run not in children):
        chain = [last]
        while parent[chain[0]] is not None:
            chain.insert(0, parent[chain[0]])
        chains.append(chain)
    return chains


def _entries(manifest):
    """(kind, name, stage runs) for every model of the manifest, teacher first."""
    entries = []
    if manifest.get("teacher"):
        teacher = manifest["teacher"]
        entries.append(("teacher", teacher.get("name"), [teacher["run"]]))
    for student in manifest.get("students", []):
        if not student.get("stages"):
            raise ValueError(f"Student {student.get('name')!r} lists no \"stages\" runs.")
        entries.append(("distilled", student.get("name"), list(student["stages"])))
    for baseline in manifest.get("baselines", []):
        entries.append(("labels-only", baseline.get("name"), [baseline["run"]]))
    if not entries:
        raise ValueError("Nothing to evaluate: the manifest lists no teacher, "
                         "students or baselines.")
    return entries


# --- evaluation ----------------------------------------------------------------------

def _settings(args, manifest):
    """Task, data folder, sequence length and headline metric of this report."""
    import keras_tinybert as kt

    task = args.task or manifest.get("task") or "sst2"
    return {
        "task": kt.data.get_task(task).name,
        "data_dir": args.data_dir or manifest.get("data_dir"),
        "seq_len": args.seq_len or manifest.get("seq_len") or 128,
        "metric": kt.data.get_task(task).metrics[0],
    }


def _key(entry):
    kind, _, runs = entry
    return kind, tuple(str(r) for r in runs)


def _earlier_records(path):
    """{(kind, runs): record} of an earlier results.json (empty without one)."""
    if not path:
        return {}
    records = json.loads(pathlib.Path(path).read_text())["models"]
    return {(r["kind"], tuple(r["runs"])): dict(r) for r in records}


def _reused(record, entry):
    """An earlier record under this run's current name (None: evaluate anew)."""
    if record is not None and entry[1]:
        record["name"] = entry[1]
    return record


def _evaluate_entry(entry, settings, args):
    """One model's record: its final run evaluated, its stages named."""
    kind, name, runs = entry
    print(f"evaluating {kind} {name or ''} {runs[-1]}", file=sys.stderr, flush=True)
    result = evaluate_run(runs[-1], settings, latency=not args.skip_latency,
                          export_sizes=not args.skip_export)
    return {"name": name, "kind": kind, "runs": [str(r) for r in runs],
            "stages": [plots.run_stage(r) for r in runs], **result}


def evaluate_run(run, settings, latency, export_sizes):
    """`keras-tinybert evaluate --json` of one run: its result dict (the command's
    printout goes to stderr, so stdout keeps only the table)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "result.json"
        argv = ["evaluate", "--model", str(run), "--task", settings["task"],
                "--seq-len", str(settings["seq_len"]), "--json", str(out)]
        argv += ["--data-dir", str(settings["data_dir"])] if settings["data_dir"] else []
        argv += ["--latency"] if latency else []
        argv += ["--export-sizes"] if export_sizes else []
        with contextlib.redirect_stdout(sys.stderr):
            code = cli.main(argv)
        if code or not out.exists():
            raise ValueError(f"keras-tinybert evaluate failed on {run} (its error is "
                             "above).")
        return json.loads(out.read_text())


def _name_unnamed(entries):
    """Names for entries without one ("distilled 4L-312H"), made unique."""
    seen = {}
    for entry in entries:
        if not entry["name"]:
            entry["name"] = "teacher" if entry["kind"] == "teacher" else \
                f"{entry['kind']} {entry['shape']}"
        count = seen[entry["name"]] = seen.get(entry["name"], 0) + 1
        if count > 1:
            entry["name"] = f"{entry['name']} ({count})"


def _compare_to_teacher(entries, metric):
    """Add params ratio and % of the teacher's metric to every entry (None without one)."""
    teacher = next((e for e in entries if e["kind"] == "teacher"), None)
    for entry in entries:
        entry["params_ratio"] = entry["pct_of_teacher"] = None
        if teacher:
            entry["params_ratio"] = entry["encoder_parameters"] / teacher["encoder_parameters"]
            score = teacher["metrics"][metric]
            entry["pct_of_teacher"] = 100 * entry["metrics"][metric] / score if score else None


# --- outputs -------------------------------------------------------------------------

def slug(name):
    """A file-name-safe form of a model name: "TinyBERT4 (2)" -> "tinybert4_2"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "model"


def write_outputs(entries, settings, out):
    """results.json, losses_<name>.png per model and accuracy_vs_size.png in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    report = {**settings, "models": entries}
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    for entry in entries:
        plots.plot_losses(entry["runs"], out / f"losses_{slug(entry['name'])}.png",
                          title=f"{entry['name']} on {settings['task']}")
    metric = settings["metric"]
    points = [{"name": e["name"], "params": e["encoder_parameters"], "kind": e["kind"],
               metric: e["metrics"][metric]} for e in entries]
    has_teacher = any(e["kind"] == "teacher" for e in entries)
    plots.plot_accuracy_vs_size(points, out / "accuracy_vs_size.png", metric=metric,
                                baseline=BASELINE if has_teacher else None)
    print(f"wrote {out / 'results.json'} and the figures in {out}", file=sys.stderr)


def _number(value, fmt):
    return "–" if value is None else format(value, fmt)


def _params(count):
    return f"{count / 1e6:.1f}M" if count >= 1e6 else f"{count / 1e3:.1f}k"


def _latency(entry):
    if "latency_ms_batch1" not in entry:
        return "–"
    return f"{entry['latency_ms_batch1']:.1f} / {entry['latency_ms_batch32']:.0f}"


def markdown_table(entries, metric):
    """The results as a Markdown table, one row per model."""
    header = ["model", "stages", "encoder params", "params ratio", f"dev {metric}",
              "% of teacher", "int8 TFLite MB", "latency ms (b1 / b32)"]
    rows = [header, ["---"] * len(header)]
    for e in entries:
        rows.append([e["name"], " → ".join(e["stages"]), _params(e["encoder_parameters"]),
                     _number(e["params_ratio"], ".3f"), f"{e['metrics'][metric]:.4f}",
                     _number(e["pct_of_teacher"], ".1f"),
                     _number(e.get("tflite_int8_mb"), ".2f"), _latency(e)])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


if __name__ == "__main__":
    sys.exit(main())
