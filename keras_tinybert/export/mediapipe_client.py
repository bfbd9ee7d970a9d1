"""Run a `.tflite` through MediaPipe Tasks' `TextClassifier`, as an app does, from here.

MediaPipe's Python wheel is the same C++ core as its Android, iOS and web libraries:
its tokenizer, its input layout, its LiteRT runtime. It lives in its own virtual
environment (made once, then reused: `ensure_python`), so that its dependencies
never meet TensorFlow's; `mediapipe_worker.py` runs there and answers over a pipe.

    with TextClassifierClient() as client:          # raises ClientUnavailable if it cannot be had
        model = client.load("student_dynamic.tflite")
        scores, labels = client.classify(model, ["a gorgeous film", "dull"])

Where the venv lives: $KT_MEDIAPIPE_VENV, else `.mediapipe-venv` at the root of a
source checkout (git-ignored), else ~/.cache/keras-tinybert/mediapipe-venv.
"""

import contextlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

REQUIREMENT = "mediapipe==1.2.3"
WORKER = pathlib.Path(__file__).with_name("mediapipe_worker.py")
_CHECK = "import mediapipe; from mediapipe.tasks.python.text import TextClassifier; print(mediapipe.__version__)"


class ClientUnavailable(RuntimeError):
    """MediaPipe could not be installed or imported here (the message says why)."""


def default_venv():
    if os.environ.get("KT_MEDIAPIPE_VENV"):
        return pathlib.Path(os.environ["KT_MEDIAPIPE_VENV"])
    checkout = pathlib.Path(__file__).resolve().parents[2]
    if (checkout / "setup.py").exists():
        return checkout / ".mediapipe-venv"
    return pathlib.Path.home() / ".cache" / "keras-tinybert" / "mediapipe-venv"


def ensure_python(venv=None):
    """The MediaPipe venv's python: made and installed on first use (about 15 s from a
    package mirror, 650 MB), reused while it imports `REQUIREMENT`'s version."""
    venv = pathlib.Path(venv or default_venv())
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    wanted = REQUIREMENT.split("==")[1]
    if _installed_version(python) == wanted:
        return str(python)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with _locked(venv.parent / f"{venv.name}.lock"):
        if _installed_version(python) == wanted:  # made meanwhile by another process
            return str(python)
        _run([sys.executable, "-m", "venv", "--clear", str(venv)], f"Creating the venv {venv}")
        _run([str(python), "-m", "pip", "install", "--quiet", REQUIREMENT], f"pip install {REQUIREMENT} into {venv}")
        version = _installed_version(python)
        if version != wanted:
            raise ClientUnavailable(f"{venv} was installed, but `import mediapipe` gives {version!r}, not {wanted}.")
    return str(python)


def _installed_version(python):
    if not python.exists():
        return None
    result = subprocess.run([str(python), "-c", _CHECK], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def _run(command, what):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise ClientUnavailable(f"{what} failed (exit {result.returncode}):\n{tail}")


@contextlib.contextmanager
def _locked(path):
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class TextClassifierClient:
    """A MediaPipe `TextClassifier` worker process (see `mediapipe_worker.py`)."""

    def __init__(self, venv=None):
        self.python = ensure_python(venv)
        self._log = tempfile.TemporaryFile(mode="w+")  # MediaPipe's own logging, for crashes
        self._process = subprocess.Popen(
            [self.python, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, text=True, bufsize=1,
        )
        self.version = self._ask(op="version")["mediapipe"]

    def load(self, path):
        """Create a TextClassifier on the `.tflite` at `path`; returns its id."""
        return self._ask(op="load", path=str(pathlib.Path(path).resolve()))["id"]

    def classify(self, model, texts):
        """`(scores [len(texts), num_classes] in category-index order, label names)`."""
        reply = self._ask(op="classify", id=model, texts=[str(t) for t in texts])
        return np.asarray(reply["scores"], dtype="float32"), reply["labels"]

    def time(self, model, text, repeats):
        """Wall times (ms) of `repeats` calls of `classify(text)` inside MediaPipe."""
        return self._ask(op="time", id=model, text=text, repeats=repeats)["ms"]

    def _ask(self, **request):
        self._process.stdin.write(json.dumps(request) + "\n")
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait()
            self._log.seek(0)
            tail = "\n".join(self._log.read().strip().splitlines()[-10:])
            raise RuntimeError(f"The MediaPipe worker exited (code {code}) on {request['op']}:\n{tail}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"MediaPipe: {reply['error']}")
        return reply

    def close(self):
        if self._process.poll() is None:
            self._process.stdin.close()
            self._process.wait(timeout=60)
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
