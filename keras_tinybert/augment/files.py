"""Augment a GLUE task's train file into a GLUE-layout TSV, resumably.

`augment_tsv` streams `train.tsv` twice: a first pass checks every row before anything is
written, the second augments it chunk by chunk (MNLI and QQP never sit in memory) and
appends each chunk's rows to `train.tsv.partial`. After each chunk it records,
atomically, how many input rows are done and the byte size of the partial file. An
interrupted run started again with the same settings truncates the partial file
to the last recorded size and goes on from the next row; rows are seeded by their index,
so the result is the same as an uninterrupted run. Only a finished run is renamed to
`train.tsv`: a half-written file is never left looking complete. The dev/test files of
the task folder are copied beside it, so the output folder is a GLUE task folder that
`load_glue(task, split, data_dir=output)` reads.
"""

import itertools
import json
import os
import pathlib
import shutil

from tqdm.auto import tqdm

from keras_tinybert.data.glue_tsv import find_glue_file, stream_glue_tsv
from keras_tinybert.data.tasks import get_task


def _settings(augmenter, table):
    stat = table.path.stat()
    return {
        "input": str(table.path.resolve()), "input_bytes": stat.st_size,
        "n_samples": augmenter.n_samples, "p": augmenter.p, "k": augmenter.k,
        "mlm_k": augmenter.mlm.k, "mlm_dtype": getattr(augmenter.mlm, "dtype", None),
        "mlm_recheck_margin": getattr(augmenter.mlm, "dtype", None)
        and augmenter.mlm.recheck_margin,  # read only with a bfloat16 masked LM
        "seed": augmenter.seed,
    }


def _write_json(path, value):
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def _resume_state(state_path, partial, settings, resume):
    """Rows already done (0 for a fresh start); truncates the partial file to match."""
    if not resume or not state_path.exists() or not partial.exists():
        partial.unlink(missing_ok=True)
        return 0
    state = json.loads(state_path.read_text())
    if state["settings"] != settings:
        raise ValueError(
            f"{partial} was started with other settings ({state['settings']}); delete it "
            f"and {state_path} to start again, or rerun with the same settings."
        )
    with open(partial, "r+b") as f:
        f.truncate(state["bytes"])
    return state["rows_done"]


def _row_line(row, path):
    if any("\t" in field or "\n" in field for field in row):
        raise ValueError(f"{path}: an augmented field holds a tab or newline: {row}")
    return "\t".join(row) + "\n"


def augment_tsv(task, data_dir, output_dir, augmenter, *, split="train", chunk_size=256,
                resume=True, progress=True, copy_other_splits=True):
    """Write the augmented `split` of `task` to `output_dir`; returns the output path.

    Args:
        task: GLUE task name.
        data_dir: the GLUE task folder (or GLUE root) holding the input TSV.
        output_dir: where `train.tsv` (same layout and columns as the input) goes.
        augmenter: an `Augmenter`.
        chunk_size: input rows augmented (and checkpointed) together.
        resume: go on from an interrupted run's checkpoint (same settings required).
        progress: show a tqdm progress bar.
        copy_other_splits: copy the task's other TSVs (dev, test) to `output_dir`.
    """
    spec = get_task(task)
    path = find_glue_file(data_dir, spec, split)
    table, rows = stream_glue_tsv(path, spec)
    total = sum(1 for _ in rows)  # a first pass checks every row, holding none
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    final = output_dir / table.path.name
    if final.resolve() == table.path.resolve():
        raise ValueError(f"The output {final} would overwrite the input; choose another --output.")
    partial = final.with_name(final.name + ".partial")
    state_path = final.with_name(final.name + ".progress.json")
    settings = _settings(augmenter, table)
    done = _resume_state(state_path, partial, settings, resume)
    with open(partial, "a", encoding="utf-8", newline="") as out, tqdm(
        total=total, initial=done, disable=not progress, unit="row",
        desc=f"augment {spec.name}",
    ) as bar:
        if done == 0 and table.header is not None:
            out.write(_row_line(table.header, final))
        rows = (row for _, row in stream_glue_tsv(path, spec)[1])
        rows = itertools.islice(rows, done, None)  # skip the rows already done
        for start in range(done, total, chunk_size):
            chunk = list(itertools.islice(rows, chunk_size))
            ids = range(start, start + len(chunk))
            augmented = augmenter.augment_rows(chunk, table.text_columns, ids)
            out.write("".join(_row_line(r, final) for rows in augmented for r in rows))
            out.flush()
            os.fsync(out.fileno())
            _write_json(state_path, {"settings": settings, "rows_done": ids.stop,
                                     "bytes": out.tell()})
            bar.update(len(ids))
    os.replace(partial, final)
    state_path.unlink(missing_ok=True)
    if copy_other_splits:
        for name in spec.tsv_files.values():
            source = table.path.parent / name
            if name != final.name and source.exists():
                shutil.copyfile(source, output_dir / name)
    return final
