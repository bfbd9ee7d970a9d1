"""Prepare the virtual environment of the PyTorch/TextBrewer peer worker.

Standard library only: importable from the main (Keras/TensorFlow) environment,
which has no torch. `ensure_peer_python()` creates `benchmarks/.peer-venv` once,
installs `requirements.txt` into it with that venv's own pip, checks that torch,
transformers and textbrewer import at the pinned versions, and returns the venv's
python. A venv that already passes the check is reused as it is.

    python benchmarks/peer/env.py [--venv DIR]   # prepare it, print its python

torch is pinned to 2.13.0 because pip finds a CPU wheel of exactly that version on
this machine's disk; anything else resolves to a CUDA build of several GB. Before
installing, a `pip install --dry-run --report` is read and the install is refused
if it would bring a torch other than 2.13.0, a CUDA torch, or any nvidia-*/triton
package.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
DEFAULT_VENV = HERE.parent / ".peer-venv"
TORCH_VERSION = "2.13.0"
INSTALL_LOG = "peer-install.log"

# Run by the venv's python: imports each package, prints one JSON line.
_VERIFY = r"""
import importlib, importlib.metadata as md, json, sys, warnings
warnings.simplefilter("ignore")
pins = json.loads(sys.argv[1])
out = {"python": sys.version.split()[0], "errors": {}, "versions": {}}
for module in ("torch", "transformers", "textbrewer"):
    try:
        importlib.import_module(module)
    except Exception as exc:
        out["errors"][module] = f"import {module} failed: {type(exc).__name__}: {exc}"
for name in pins:
    try:
        out["versions"][name] = md.version(name)
    except md.PackageNotFoundError:
        out["versions"][name] = None
if "torch" in sys.modules:
    import torch
    out["torch"] = torch.__version__
    out["torch_cuda"] = torch.version.cuda
print(json.dumps(out))
"""


class PeerEnvError(RuntimeError):
    """The peer venv could not be created, installed or verified."""


def _log(message):
    print(f"[peer-env] {message}", file=sys.stderr, flush=True)


def venv_python(venv_dir) -> Path:
    venv_dir = Path(venv_dir)
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def pinned_versions(requirements=REQUIREMENTS) -> dict:
    """{name: version} for every `name==version` line of the requirements file."""
    pins = {}
    for line in Path(requirements).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def _same_version(installed, pinned):
    # torch's CPU wheel is "2.13.0+cpu": the local label does not change the release.
    return installed is not None and installed.split("+", 1)[0] == pinned


def check_peer_python(python, requirements=REQUIREMENTS) -> list:
    """Problems with `python` as the peer interpreter ([] when it is ready)."""
    python = Path(python)
    if not python.exists():
        return [f"{python} does not exist"]
    pins = pinned_versions(requirements)
    try:
        result = subprocess.run(
            [str(python), "-c", _VERIFY, json.dumps(sorted(pins))],
            capture_output=True, text=True, timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [f"could not run {python}: {exc}"]
    try:
        report = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = "\n".join(result.stderr.strip().splitlines()[-10:])
        return [f"{python} failed the import check (exit {result.returncode}):\n{tail}"]
    problems = list(report["errors"].values())
    for name, pinned in sorted(pins.items()):
        installed = report["versions"].get(name)
        if not _same_version(installed, pinned):
            problems.append(f"{name}: installed {installed or 'nothing'}, pinned {pinned}")
    torch_version = report.get("torch")
    if torch_version is not None:
        if not torch_version.startswith(TORCH_VERSION):
            problems.append(f"torch.__version__ is {torch_version}, expected {TORCH_VERSION}")
        if report.get("torch_cuda"):
            problems.append(f"torch {torch_version} is a CUDA build; expected the CPU wheel")
    return problems


def _run_pip(python, args, log_path, what):
    command = [str(python), "-m", "pip", *args]
    with open(log_path, "a") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        lines = Path(log_path).read_text().splitlines()
        relevant = [l for l in lines if "is ignored: it is neither a file" not in l]
        tail = "\n".join(relevant[-15:])
        raise PeerEnvError(
            f"{what} failed (pip exit {result.returncode}). Last pip output:\n{tail}\n"
            f"Full log: {log_path}. Fix the pin in {REQUIREMENTS} or the package "
            f"index, then rerun `python {Path(__file__).resolve()}`."
        )


def _guard_against_cuda_torch(python, requirements, log_path):
    """Refuse an install that would download a CUDA torch (several GB)."""
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        _run_pip(
            python,
            ["install", "--dry-run", "--quiet", "--report", str(report_path),
             "-r", str(requirements)],
            log_path, "Resolving the peer requirements (pip --dry-run)",
        )
        report = json.loads(report_path.read_text())
    bad = []
    for item in report.get("install", []):
        name = item["metadata"]["name"].lower()
        version = item["metadata"]["version"]
        cuda_label = sys.platform.startswith("linux") and version.partition("+")[2] != "cpu"
        if name == "torch" and (not version.startswith(TORCH_VERSION) or cuda_label):
            url = item.get("download_info", {}).get("url", "?")
            bad.append(f"torch {version} from {url}")
        elif name.startswith("nvidia-") or name == "triton":
            bad.append(f"{name} {version}")
    if bad:
        raise PeerEnvError(
            "Refusing to install the peer requirements: pip would bring a CUDA torch "
            f"stack ({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}). The peer "
            f"needs the CPU wheel torch=={TORCH_VERSION}+cpu, which pip finds only "
            "where it lies on disk (pip's find-links, as on this project's machines) "
            f"and for Python 3.11 (this is {sys.version.split()[0]}). Make that wheel "
            "reachable, or install a CPU torch into the venv by hand and rerun."
        )


@contextlib.contextmanager
def _locked(venv_dir):
    """Serialise concurrent preparations of the same venv (POSIX only)."""
    venv_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(venv_dir / ".peer-env.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_peer_python(venv_dir=None) -> str:
    """Create (once) the peer venv, install and verify it; return its python path.

    Reuses `venv_dir` (default benchmarks/.peer-venv) when its python already
    imports torch 2.13.0, transformers and textbrewer at the pinned versions.
    Raises PeerEnvError with the failing package and a fix when it cannot.
    """
    venv_dir = Path(venv_dir) if venv_dir is not None else DEFAULT_VENV
    venv_dir = venv_dir.resolve()
    python = venv_python(venv_dir)
    if python.exists() and not check_peer_python(python):
        return str(python)
    with _locked(venv_dir):
        if python.exists() and not check_peer_python(python):  # another process made it
            return str(python)
        started = time.perf_counter()
        log_path = venv_dir / INSTALL_LOG
        if not python.exists():
            _log(f"creating venv {venv_dir} with {sys.executable}")
            result = subprocess.run(
                [sys.executable, "-m", "venv", str(venv_dir)],
                capture_output=True, text=True,
            )
            if result.returncode != 0 or not python.exists():
                raise PeerEnvError(
                    f"`{sys.executable} -m venv {venv_dir}` failed:\n{result.stderr.strip()}\n"
                    "Install the venv module (Debian: apt-get install python3-venv) "
                    "or pass another venv_dir."
                )
        _log(f"checking what pip would install (log: {log_path})")
        _guard_against_cuda_torch(python, REQUIREMENTS, log_path)
        _log(f"installing {REQUIREMENTS.name} (torch=={TORCH_VERSION} CPU, transformers, textbrewer)")
        _run_pip(python, ["install", "-r", str(REQUIREMENTS)], log_path,
                 f"Installing {REQUIREMENTS} into {venv_dir}")
        problems = check_peer_python(python)
        if problems:
            raise PeerEnvError(
                f"The peer venv {venv_dir} was installed but does not work:\n  - "
                + "\n  - ".join(problems)
                + f"\nSee {log_path}. Delete {venv_dir} and rerun "
                f"`python {Path(__file__).resolve()}` after fixing the pins in {REQUIREMENTS}."
            )
        _log(f"ready in {time.perf_counter() - started:.0f} s: {python}")
    return str(python)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default=None,
                        help=f"venv directory (default: {DEFAULT_VENV})")
    args = parser.parse_args(argv)
    try:
        print(ensure_peer_python(args.venv))
    except PeerEnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
