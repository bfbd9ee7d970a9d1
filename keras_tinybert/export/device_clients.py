"""Run a `.tflite` through the on-device text clients, as an app does, from here.

Two clients, each the real library from PyPI in its own virtual environment (made
once, then reused: `ensure_python`), so that their dependencies never meet
TensorFlow's; `device_client_worker.py` runs there and answers over a pipe:

  "mediapipe"     MediaPipe Tasks' `TextClassifier` (`mediapipe`): the same C++ core
                  as its Android, iOS and web libraries (tokenizer, input layout,
                  LiteRT runtime).
  "task_library"  the TFLite Task Library's `BertNLClassifier` (`tflite-support`
                  0.4.4, its last release; needs libusb-1.0: Debian `libusb-1.0-0`).

    with TextClassifierClient() as client:          # raises ClientUnavailable if it cannot be had
        model = client.load("student_dynamic.tflite")
        scores, labels = client.classify(model, ["a gorgeous film", "dull"])

Where the venvs live: `$KT_CLIENT_VENVS/<client>`, else `.client-venvs/<client>` at the
root of a source checkout (git-ignored), else ~/.cache/keras-tinybert/<client>.
"""

import contextlib
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

WORKER = pathlib.Path(__file__).with_name("device_client_worker.py")


@dataclasses.dataclass(frozen=True)
class Client:
    requirement: str  # what pip installs, pinned
    check: str  # an import that must work
    hint: str = ""  # the usual fix when the import fails

    @property
    def distribution(self):
        return self.requirement.split("==")[0]

    @property
    def version(self):
        return self.requirement.split("==")[1]


CLIENTS = {
    "mediapipe": Client("mediapipe==1.2.3", "from mediapipe.tasks.python.text import TextClassifier"),
    "task_library": Client(
        "tflite-support==0.4.4", "from tflite_support.task.text import BertNLClassifier",
        hint="tflite-support's native library needs libusb-1.0 (Debian: apt-get install libusb-1.0-0)",
    ),
}


class ClientUnavailable(RuntimeError):
    """The client could not be installed or imported here (the message says why)."""


def default_venv(client="mediapipe"):
    if os.environ.get("KT_CLIENT_VENVS"):
        return pathlib.Path(os.environ["KT_CLIENT_VENVS"]) / client
    checkout = pathlib.Path(__file__).resolve().parents[2]
    if (checkout / "setup.py").exists():
        return checkout / ".client-venvs" / client
    return pathlib.Path.home() / ".cache" / "keras-tinybert" / client


def ensure_python(client="mediapipe", venv=None):
    """The client's venv python: made and installed on first use (MediaPipe: about a
    minute and 650 MB), then reused while it has the pinned version and imports.
    Raises `ClientUnavailable` (installing nothing again) when the pinned version is
    installed but does not import, e.g. for want of a system library."""
    spec = CLIENTS[client]
    venv = pathlib.Path(venv or default_venv(client))
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    venv.parent.mkdir(parents=True, exist_ok=True)
    with _locked(venv.parent / f"{venv.name}.lock"):
        version, failure = _probe(python, spec)
        if version != spec.version:
            _run([sys.executable, "-m", "venv", "--clear", str(venv)], f"Creating the venv {venv}")
            _run([str(python), "-m", "pip", "install", "--quiet", spec.requirement],
                 f"pip install {spec.requirement} into {venv}")
            version, failure = _probe(python, spec)
    if failure is not None:
        raise ClientUnavailable(f"{spec.requirement} is installed in {venv} but does not import: {failure}"
                                + (f". {spec.hint}." if spec.hint else "."))
    return str(python)


_PROBE = """
import importlib.metadata, json, sys
try:
    version = importlib.metadata.version(sys.argv[1])
except importlib.metadata.PackageNotFoundError:
    version = None
try:
    exec(sys.argv[2])
    failure = None
except Exception as error:
    failure = f"{type(error).__name__}: {error}"
print(json.dumps([version, failure]))
"""


def _probe(python, spec):
    """(installed version or None, why the import fails or None)."""
    if not python.exists():
        return None, "no venv"
    result = subprocess.run([str(python), "-c", _PROBE, spec.distribution, spec.check], capture_output=True, text=True)
    try:
        return tuple(json.loads(result.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        return None, (result.stderr.strip().splitlines() or ["the venv's python does not run"])[-1]


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
    """A worker process running `client`'s text classifier (see `device_client_worker.py`)."""

    def __init__(self, client="mediapipe", venv=None):
        self.client = client
        self.python = ensure_python(client, venv)
        self._log = tempfile.TemporaryFile(mode="w+")  # MediaPipe's own logging, for crashes
        self._process = subprocess.Popen(
            [self.python, str(WORKER), client], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, text=True, bufsize=1,
        )
        self.version = self._ask(op="version")["version"]

    def load(self, path):
        """Create a classifier on the `.tflite` at `path`; returns its id."""
        return self._ask(op="load", path=str(pathlib.Path(path).resolve()))["id"]

    def classify(self, model, texts):
        """`(scores [len(texts), num_classes] in category-index order, label names)`."""
        reply = self._ask(op="classify", id=model, texts=[str(t) for t in texts])
        return np.asarray(reply["scores"], dtype="float32"), reply["labels"]

    def time(self, model, text, repeats):
        """Wall times (ms) of `repeats` calls of `classify(text)` inside the client."""
        return self._ask(op="time", id=model, text=text, repeats=repeats)["ms"]

    def _ask(self, **request):
        self._process.stdin.write(json.dumps(request) + "\n")
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait()
            self._log.seek(0)
            tail = "\n".join(self._log.read().strip().splitlines()[-10:])
            raise RuntimeError(f"The {self.client} worker exited (code {code}) on {request['op']}:\n{tail}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.client}: {reply['error']}")
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
