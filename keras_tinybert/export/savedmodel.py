"""SavedModel for TensorFlow Serving, in its `<base>/<name>/<version>/` layout."""

import os
import pathlib
import shutil

import keras
import tensorflow as tf

from keras_tinybert.export.artifacts import (
    build_metadata,
    inference_model,
    input_names,
    metadata_path,
    serving_outputs,
    text_fields,
    token_id_spec,
    write_json,
)

TEXT_SIGNATURE = "serving_default"
TOKEN_ID_SIGNATURE = "serve_token_ids"


def saved_model(model, path, preprocessor=None, metadata=None, text_inputs=None):
    """Export `model` as a TF Serving SavedModel; return the version directory written.

    `path` is either `<base>/<name>/<version>` (an integer last component) or
    `<base>/<name>`, in which case the next free version is used. An existing version
    is never overwritten. Signatures, both returning `logits` and `probabilities`:

    - `serve_token_ids`: the model's own int32 inputs [batch, length] (`input_names`:
      BERT's `token_ids`, `segment_ids`, `padding_mask`; RoBERTa's without segment ids...);
    - `serving_default`: with a `preprocessor`, string inputs named `text_inputs`
      ([batch] each; two names for sentence-pair tasks, packed in that order) tokenised
      and packed inside the graph; without one, the same as `serve_token_ids`.
      `text_inputs` defaults to the task's text fields in `metadata` (`text_fields`):
      ("premise", "hypothesis") for MNLI, ("text",) when no task is known.

    `metadata` is the student's own metadata (label names, teacher, distillation config);
    the export's `metadata.json` goes inside the version directory.
    """
    inference_model(model)  # a bare backbone: a clear error, before anything is written
    text_inputs = tuple(text_inputs or text_fields(metadata))
    version_dir = free_version_dir(path)
    partial = version_dir.parent / f".{version_dir.name}.partial-{os.getpid()}"
    try:
        archive, serve_token_ids = token_id_archive(model)
        if preprocessor is not None:
            _add_text_endpoint(archive, model, preprocessor, text_inputs)
        else:
            archive.add_endpoint(TEXT_SIGNATURE, serve_token_ids)
        archive.write_out(str(partial), verbose=False)
        signatures = [TEXT_SIGNATURE, TOKEN_ID_SIGNATURE]
        write_json(
            metadata_path(partial),
            build_metadata(
                model,
                preprocessor,
                source=metadata,
                format="saved_model",
                signatures=signatures,
                raw_text_inputs=list(text_inputs) if preprocessor is not None else None,
            ),
        )
        # TF Serving watches <base>/<name> and loads any new numeric directory:
        # appear there only once complete.
        partial.rename(version_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return version_dir


def token_id_archive(model):
    """An `ExportArchive` tracking `model` with the `serve_token_ids` endpoint, and
    that endpoint's function."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    serve_token_ids = archive.add_endpoint(
        TOKEN_ID_SIGNATURE,
        tf.function(
            lambda inputs: serving_outputs(model, inputs),
            input_signature=[token_id_spec(input_names(model))],
        ),
    )
    return archive, serve_token_ids


def _add_text_endpoint(archive, model, preprocessor, text_inputs):
    """`serving_default`: raw strings through the keras-hub preprocessor (TF Text ops)."""
    if not 1 <= len(text_inputs) <= 2:
        raise ValueError(f"text_inputs names one or two string inputs; got {text_inputs!r}.")
    spec = {name: tf.TensorSpec([None], tf.string, name=name) for name in text_inputs}

    def pack(texts):
        segments = tuple(texts[name] for name in text_inputs)
        # `x=`: a bare tuple would be read as (x, y)
        return preprocessor(x=segments[0] if len(segments) == 1 else segments)

    pack({name: tf.constant(["build"]) for name in text_inputs})  # build before tracking
    archive.track(preprocessor)
    archive.add_endpoint(
        TEXT_SIGNATURE,
        tf.function(lambda texts: serving_outputs(model, pack(texts)), input_signature=[spec]),
    )


def free_version_dir(path):
    """The version directory to write for `path`; errors if that version exists."""
    path = pathlib.Path(path)
    base = path.parent if path.name.isdigit() else path
    if base.exists() and not base.is_dir():
        raise NotADirectoryError(f"{base} is a file; TF Serving needs a directory <base>/<name>/<version>.")
    versions = [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.exists() else []
    next_free = base / str(max(versions, default=0) + 1)
    if not path.name.isdigit():
        if base.exists() and (base / "saved_model.pb").exists():
            raise ValueError(
                f"{base} is itself a SavedModel; TF Serving expects <base>/<name>/<version>/. "
                f"Export to a new directory, e.g. {base.parent / (base.name + '_serving') / '1'}."
            )
        return next_free
    if path.exists():
        raise FileExistsError(
            f"Version {path.name} already exists at {path}; versions are never overwritten. "
            f"The next free version is {next_free.name}: export to {next_free}."
        )
    return path
