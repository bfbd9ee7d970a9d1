"""Data this repository does not ship: GLUE from TFDS, a general corpus by name.

Without a local GLUE folder, `load_glue` asks TFDS for `glue/<task>`. A general
corpus can be named instead of given as files: "wikitext-2" or "wikitext-103"
(WikiText's raw text, Merity et al. 2016; TFDS has no WikiText, so Hugging Face
`datasets` fetches it: `pip install "keras-tinybert[corpus]"`), written once as plain
text to `~/.cache/keras_tinybert/corpora/<name>/train.txt` (or under
`$XDG_CACHE_HOME`) and streamed from there like any text file.

When a download cannot happen (no network, the loader not installed), one error
says which folder to create, what to put in it and how to pass it: the Python
argument and the command-line flag.
"""

import os
import pathlib

# Corpus name -> (Hugging Face dataset, configuration). The raw configurations keep
# every word (the others replace rare ones by <unk>, which a WordPiece teacher never saw).
CORPORA = {
    "wikitext-2": ("Salesforce/wikitext", "wikitext-2-raw-v1"),
    "wikitext-103": ("Salesforce/wikitext", "wikitext-103-raw-v1"),
}
CORPUS_FILE = "train.txt"


def glue_from_tfds(spec, split, tfds_data_dir=None):
    """TFDS's `glue/<task>` split as a dataset of feature dicts.

    Raises FileNotFoundError, saying how to use a local folder instead, when TFDS
    cannot provide it (no network, TFDS or one of its dependencies missing).
    """
    try:
        import tensorflow_datasets as tfds

        return tfds.load(f"glue/{spec.name}", split=split, data_dir=tfds_data_dir)
    except (ImportError, OSError) as error:
        raise FileNotFoundError(_no_glue(spec, error)) from error


def _reason(error):
    return f"{type(error).__name__}: {error}"


def _tsv_layout(spec):
    """How a task's GLUE TSV files look, in words."""
    if not spec.tsv_header:
        return (f"tab-separated, no header row, the label in column {spec.tsv_label + 1} "
                f"and the sentence in column {spec.tsv_text[0] + 1}")
    columns = ", ".join(map(str, spec.tsv_text + (spec.tsv_label,)))
    return f"tab-separated, with a header row naming the columns {columns}"


def _no_glue(spec, error):
    folder = f"data/{spec.name}"
    files = [name for split, name in spec.tsv_files.items() if not split.startswith("test")]
    return (
        f"GLUE task {spec.name!r} is not available from TFDS (glue/{spec.name}): "
        f"{_reason(error)}.\n"
        f"Use a local copy of GLUE's files instead:\n"
        f"  mkdir -p {folder}\n"
        f"  # put {' and '.join(files)} there ({_tsv_layout(spec)}),\n"
        f"  # e.g. from GLUE's {spec.glue_dir}.zip\n"
        f"then pass the folder: data_dir='{folder}' in Python, "
        f"--data-dir {folder} on the command line."
    )


def cache_dir():
    """Where named corpora are written: `$XDG_CACHE_HOME/keras_tinybert/corpora`."""
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "keras_tinybert" / "corpora"


def corpus_files(name, directory=None):
    """The text file of the well-known corpus `name`, downloaded on first use.

    Args:
        name: a key of `CORPORA` ("wikitext-2", "wikitext-103").
        directory: the cache (default `cache_dir()`); the text goes to
            `<directory>/<name>/train.txt`.

    Raises:
        FileNotFoundError: the download failed; the message says which folder to
            create instead, and how to pass it.
    """
    if name not in CORPORA:
        raise ValueError(f"Unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}.")
    target = pathlib.Path(directory or cache_dir()) / name / CORPUS_FILE
    if not target.exists():
        try:
            _write_lines(target, _hugging_face_lines(*CORPORA[name]))
        except (ImportError, OSError) as error:
            raise FileNotFoundError(_no_corpus(name, error)) from error
    return [str(target)]


def _hugging_face_lines(dataset, configuration):
    """The lines of a Hugging Face text dataset's train split (its "text" column)."""
    import datasets

    rows = datasets.load_dataset(dataset, configuration, split="train")
    for batch in rows.iter(batch_size=10_000):
        for text in batch["text"]:
            yield text.rstrip("\n")


def _write_lines(target, lines):
    """Write `lines` to `target` whole or not at all (a stopped download leaves none)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with open(partial, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)


def _no_corpus(name, error):
    dataset, configuration = CORPORA[name]
    if isinstance(error, ImportError):
        why = (f"{_reason(error)}; the download needs Hugging Face datasets: "
               f'pip install "keras-tinybert[corpus]"')
    else:
        why = _reason(error)
    folder = f"data/{name}"
    return (
        f"Could not download the corpus {name!r} ({dataset}, {configuration}): {why}.\n"
        f"Use local text files instead:\n"
        f"  mkdir -p {folder}\n"
        f"  # put plain-text *.txt files there, one paragraph per line\n"
        f"  # (WikiText's own {name}-raw train file works as it is)\n"
        f"then pass the folder: corpus=['{folder}'] in Python (kt.Config), "
        f"--corpus {folder} on the command line."
    )
