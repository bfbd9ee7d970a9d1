"""A quiet command line: no TensorFlow start-up logs, no warnings nobody can act on.

What `import tensorflow` (2.21) prints on a machine without a GPU, measured:

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. You may see slightly ...
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will ...
    I0000 ... cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use ...
    To enable the following instructions: AVX2 AVX512F ... rebuild TensorFlow with ...

C++ writes these while TensorFlow's shared libraries load, before absl's logging is
initialised, so `TF_CPP_MIN_LOG_LEVEL` does not reach them: `import_tensorflow` points
file descriptor 2 at a file during the import and then passes on every line except
these (an import that fails still shows what it printed). After the import,
`TF_CPP_MIN_LOG_LEVEL=3` (set before it) keeps C++ logs below FATAL quiet, e.g.
"failed call to cuInit: ... (303)" at the first device probe and "oneDNN supports
DT_INT64 only on platforms with AVX-512" at the first step. Errors still reach the
user: TensorFlow raises them as Python exceptions, which `cli.py` prints.

A user's own `TF_CPP_MIN_LOG_LEVEL` is kept; `keras-tinybert -v` skips all of this.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

# Lines `import tensorflow` (and its first GPU probe) print that say nothing to act on.
START_UP_NOISE = re.compile("|".join([
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"oneDNN custom operations are on\.",
    r"Could not find cuda drivers on your machine, GPU will not be used",
    r"failed call to cuInit",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"To enable the following instructions: .* rebuild TensorFlow with the appropriate",
]))

# What LiteRT's interpreter prints (C++, to fd 2) each time it is made: nothing to act on.
LITERT_NOISE = re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$")

# Keras warnings that name nothing a command-line user did or can change.
CLI_WARNINGS = (
    # Loading a keras-hub task model: its compile() is custom, and the commands
    # compile what they train themselves.
    r"`compile\(\)` was not called as part of model loading because the model's "
    r"`compile\(\)` method is custom",
    # The first epoch over a dataset of unknown length (bucketed, packed text) ends
    # when the data does; the commands pass no steps_per_epoch.
    r"Your input ran out of data; interrupting training",
)


@contextlib.contextmanager
def filtered_stderr(noise=START_UP_NOISE):
    """Send file descriptor 2 to a file in the block, then pass on the lines not `noise`.

    Catches what C++ writes directly to fd 2, which Python's `sys.stderr` never sees.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 to redirect (a closed stderr): nothing will be printed
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not noise.search(line)))
            sys.stderr.flush()


def import_tensorflow():
    """Import TensorFlow and probe its devices with the start-up noise filtered out."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with filtered_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the GPU probe, while fd 2 is filtered


@contextlib.contextmanager
def quiet():
    """The block runs with TensorFlow imported quietly and the known warnings hidden.

    Python warnings filters and logger levels are restored on exit (the CLI can be
    called in-process, e.g. by tests).
    """
    import_tensorflow()
    # urllib3: a download's "Retrying (Retry(total=8, ...))" lines; the error follows.
    loggers = [logging.getLogger(name) for name in ("tensorflow", "absl", "urllib3")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        for message in CLI_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)
