"""Reading GLUE's own TSV files (header row, tab-separated, no quoting).

`read_glue_tsv` keeps the raw rows (the augmenter rewrites text columns in place and
writes every other column back untouched) and knows which columns are text and label.
Bad files fail loudly with the file and line: a row with the wrong number of fields, a
label the task does not know, an empty file.
"""

import csv
import dataclasses
import pathlib
import sys

import numpy as np

from keras_tinybert.data.labels import parse_label
from keras_tinybert.data.tasks import get_task, tsv_split

# Some GLUE rows (QQP, MNLI) hold very long fields.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclasses.dataclass
class GlueTable:
    """The rows of one GLUE TSV file.

    Attributes:
        path: the file read.
        task: its `TaskSpec`.
        header: the header row, or `None` (CoLA).
        rows: the data rows, each a list of string fields.
        line_numbers: the 1-based file line of each row (for error messages).
        text_columns: positions of the text fields in each row.
        label_column: position of the label, or `None` (test files have no label).
    """

    path: pathlib.Path
    task: object
    header: list
    rows: list
    line_numbers: list
    text_columns: tuple
    label_column: object

    def __len__(self):
        return len(self.rows)

    def texts(self):
        """One list of strings per text field (1 for single sentences, 2 for pairs)."""
        return [[row[c] for row in self.rows] for c in self.text_columns]

    def labels(self):
        """Label ids (int64) in the task's label order, or floats for STS-B."""
        if self.label_column is None:
            raise ValueError(f"{self.path} has no label column (a test split?).")
        values = [
            parse_label(self.task, row[self.label_column], self.path, line)
            for row, line in zip(self.rows, self.line_numbers)
        ]
        dtype = np.float32 if self.task.is_regression else np.int64
        return np.asarray(values, dtype=dtype)


def _column(spec_column, header, path, required):
    """Resolve a column given by header name or position to a position."""
    if isinstance(spec_column, int):
        return spec_column
    if header is not None and spec_column in header:
        return header.index(spec_column)
    if required:
        raise ValueError(
            f"{path}: column {spec_column!r} not in the header {header}; "
            "is this a GLUE file of the right task, with its header row?"
        )
    return None


def read_glue_tsv(path, task, *, skip_malformed=False):
    """Read a GLUE-layout TSV of `task` into a `GlueTable`.

    Args:
        path: the `.tsv` file (e.g. `.../SST-2/train.tsv`).
        task: task name or `TaskSpec`.
        skip_malformed: drop rows whose field count differs from the header's
            instead of raising (the real QQP train file has a few such rows).

    Raises:
        ValueError: empty file, missing column, or (unless `skip_malformed`) a row
            with the wrong number of fields; the message names the file and line.
    """
    table, rows = stream_glue_tsv(path, task, skip_malformed=skip_malformed)
    for number, row in rows:
        table.rows.append(row)
        table.line_numbers.append(number)
    return table


def stream_glue_tsv(path, task, *, skip_malformed=False):
    """Open a GLUE TSV without reading it: `(table, rows)`.

    `table` is a `GlueTable` with the header and columns but no rows; `rows` is a
    generator of `(line_number, row)` over the data rows, checked as in `read_glue_tsv`
    (for files too large to hold in memory, e.g. by `augment_tsv`).
    """
    spec, path = get_task(task), pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"GLUE file not found: {path}")
    with open(path, encoding="utf-8", newline="") as f:
        first = next(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), None)
        has_data = first is not None and (not spec.tsv_header or f.readline() != "")
    if not has_data:
        raise ValueError(f"{path}: the file is empty (no data rows); re-download it.")
    header = first if spec.tsv_header or _is_test_header(spec, first) else None
    if header is not None and not spec.tsv_header:
        # CoLA: train/dev have no header, but test.tsv is `index<TAB>sentence`.
        text_columns, label_column = (header.index("sentence"),), None
    else:
        text_columns = tuple(_column(c, header, path, True) for c in spec.tsv_text)
        label_column = _column(spec.tsv_label, header, path, required=False)
    table = GlueTable(path, spec, header, [], [], text_columns, label_column)
    width = len(header) if header else max(text_columns + (label_column,)) + 1
    return table, _rows(path, header, width, skip_malformed)


def _is_test_header(spec, first):
    """A header-less task's test file that has a header after all (CoLA's)."""
    return not spec.tsv_header and first[:1] == ["index"] and "sentence" in first


def _rows(path, header, width, skip_malformed):
    with open(path, encoding="utf-8", newline="") as f:
        for number, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if header is not None and number == 1:
                continue
            if (header is not None and len(row) != width) or len(row) < width:
                if skip_malformed:
                    continue
                raise ValueError(
                    f"{path}:{number}: {len(row)} tab-separated fields, expected {width}"
                    f"{' as in the header' if header else ''}. Fix the row (a stray tab or "
                    "newline in the text?) or skip such rows: skip_malformed=True in "
                    "Python, --skip-malformed on the command line."
                )
            yield number, row


def find_glue_file(data_dir, task, split):
    """The TSV of `split` in `data_dir`: the task folder itself or a GLUE root above it."""
    spec = get_task(task)
    name = spec.tsv_files[tsv_split(spec, split)]
    data_dir = pathlib.Path(data_dir)
    candidates = [data_dir / name] + [
        data_dir / sub / name for sub in (spec.glue_dir, spec.name, spec.glue_dir.lower())
    ]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"No {name} for task {spec.name!r} under {data_dir}; looked at "
        f"{', '.join(str(c) for c in candidates)}. Point data_dir= (Python) or "
        f"--data-dir (command line) at the folder that holds {name}."
    )
