"""The `keras-tinybert` command as a user meets it: quiet, fast `--help`, one-line errors.

Most checks run the CLI in a fresh Python (`python -m keras_tinybert.cli`), with the
environment of a user's shell (no TF_CPP_MIN_LOG_LEVEL from conftest), and read its
stderr and exit status.
"""

import json
import logging
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import yaml

from conftest import REPO
from keras_tinybert import cli, quiet

def run_cli(*argv, code=None):
    """Run the CLI (or Python `code`, with `argv` as sys.argv[1:]) in a new process."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    command = ([sys.executable, "-c", code, *argv] if code else
               [sys.executable, "-m", "keras_tinybert.cli", *argv])
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=300)


def test_help_answers_without_tensorflow():
    shown = run_cli("export", "--help")
    assert shown.returncode == 0 and shown.stderr == ""
    assert shown.stdout.startswith("usage: keras-tinybert export")
    assert "-v, --verbose" in shown.stdout and "--debug" in shown.stdout

    # Every sub-command's --help, then the package's public names, in one process.
    modules = run_cli(code=textwrap.dedent("""
        import sys
        from keras_tinybert import cli
        codes = [cli.main([name, "--help"]) for name in [*cli.COMMANDS]]
        codes += [cli.main(["--help"]), cli.main(["--version"])]
        import keras_tinybert as kt
        kt.Config(stage="general")  # a plain dataclass: no TensorFlow either
        print("CODES", set(codes), len(codes) == len(cli.COMMANDS) + 2,
              "TF", "tensorflow" in sys.modules,
              "KERAS", "keras" in sys.modules)
    """))
    assert modules.stderr == ""
    assert "CODES {0} True TF False KERAS False" in modules.stdout
    assert "\nkeras-tinybert 0.1.0\n" in modules.stdout


def test_a_user_error_is_one_line_with_status_2(tmp_path):
    """A command that imports TensorFlow, then fails on its input: one line, nothing else."""
    missing = tmp_path / "no-such-student"
    result = run_cli("export", "--model", str(missing), "--format", "tflite",
                     "--output", str(tmp_path / "s.tflite"))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("keras-tinybert: error: ") and str(missing) in line

    # --debug adds the traceback; -v brings TensorFlow's start-up logs back.
    debug = run_cli("export", "--model", str(missing), "--format", "tflite",
                    "--output", str(tmp_path / "s.tflite"), "--debug", "-v")
    assert debug.returncode == 2
    assert "Traceback (most recent call last)" in debug.stderr
    assert "All log messages before absl::InitializeLog() is called" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1] == line


def test_argparse_errors_keep_argparse_format():
    result = run_cli("distill", "--epochs", "many")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "keras-tinybert distill: error: argument --epochs: invalid int value: 'many'")


RAISE = """
import sys
from keras_tinybert import cli
from keras_tinybert.commands import export

def run(args):
    raise {error}

export.run = run
sys.exit(cli.main(["export", "--model", "m", "--format", "tflite", "--output", "o",
                   *sys.argv[1:]]))
"""


@pytest.mark.parametrize("error, status, stderr", [
    ('FileExistsError("Version 1 already exists under out/; pass a new --version.")', 2,
     ["keras-tinybert: error: Version 1 already exists under out/; pass a new --version."]),
    ('ConnectionError("Max retries exceeded with url: /glue/data/SST-2.zip")', 2,
     ["keras-tinybert: error: Max retries exceeded with url: /glue/data/SST-2.zip"]),
    ("KeyboardInterrupt()", 130, ["", "keras-tinybert: interrupted"]),
    ('RuntimeError("a bug\\nits details")', 1,
     ["keras-tinybert: error: RuntimeError: a bug",
      "keras-tinybert: run again with --debug for the traceback"]),
])
def test_exit_status_and_message_by_kind_of_error(error, status, stderr):
    # -v: no TensorFlow import, the error handling is the same.
    result = run_cli("-v", code=RAISE.format(error=error))
    assert result.returncode == status
    assert result.stderr.splitlines() == stderr


def _raise_from(function):
    """The exception `function()` raises, with its traceback."""
    try:
        function()
    except Exception as error:  # noqa: BLE001 - the test hands it to report()
        return error
    raise AssertionError(f"{function} raised nothing")


def test_report_tells_our_messages_from_library_ones(capsys):
    from keras_tinybert.config import Config

    ours = _raise_from(lambda: Config(stage="bogus"))
    assert cli.report(ours) == 2  # the message names the fix: no hint
    assert capsys.readouterr().err == f"keras-tinybert: error: {ours}\n"

    # A ValueError raised inside a library (here json) may be a bug of ours: the hint.
    library = _raise_from(lambda: json.loads("not json"))
    assert cli.report(library) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("keras-tinybert: error: Expecting value")
    assert err[1] == cli.DEBUG_HINT

    assert cli.report(_raise_from(lambda: yaml.safe_load("stages: [\n  - x\n"))) == 2
    assert capsys.readouterr().err.startswith("keras-tinybert: error: while parsing")

    assert cli.report(SystemExit("recipe.yaml: unknown stage 'bogus'.")) == 2
    assert capsys.readouterr().err == (
        "keras-tinybert: error: recipe.yaml: unknown stage 'bogus'.\n")


def test_filtered_stderr_drops_start_up_noise_and_keeps_the_rest(capfd):
    with quiet.filtered_stderr():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called "
                    b"are written to STDERR\n")
        os.write(2, b"I0000 00:00:1.0  1 cudart_stub.cc:31] Could not find cuda drivers "
                    b"on your machine, GPU will not be used.\n")
        os.write(2, b"F0000 00:00:1.0  1 op_kernel.cc:1] a real failure\n")
        os.write(2, b"ImportError: libcudart.so.12: cannot open shared object file\n")
    assert capfd.readouterr().err == (
        "F0000 00:00:1.0  1 op_kernel.cc:1] a real failure\n"
        "ImportError: libcudart.so.12: cannot open shared object file\n")


def test_quiet_hides_what_nobody_can_act_on_then_restores():
    retries = logging.getLogger("urllib3.connectionpool")
    assert retries.isEnabledFor(logging.WARNING)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with quiet.quiet():
            assert not retries.isEnabledFor(logging.WARNING)
            warnings.warn("Your input ran out of data; interrupting training. Make sure "
                          "that your dataset or generator can generate at least ...")
            warnings.warn("`compile()` was not called as part of model loading because "
                          "the model's `compile()` method is custom. ...")
            warnings.warn("a warning the user can act on")
        warnings.warn("Your input ran out of data; interrupting training.")
    assert [str(w.message) for w in shown] == [
        "a warning the user can act on",
        "Your input ran out of data; interrupting training."]
    assert retries.isEnabledFor(logging.WARNING)


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory):
    """A saved tiny teacher run and a 48-sentence SST-2 folder."""
    from keras_tinybert import testing

    root = tmp_path_factory.mktemp("tiny_task")
    teacher = testing.tiny_classifier(num_layers=2, hidden_dim=16, seed=1)
    (root / "teacher").mkdir()
    teacher.save(root / "teacher" / "model.keras")
    (root / "teacher" / "metadata.json").write_text(
        json.dumps({"label_names": ["negative", "positive"]}))
    (root / "sst2").mkdir()
    rows = ["sentence\tlabel"] + [f"a {word} film\t{i % 2}"
                                  for i, word in enumerate(["bad", "good"] * 24)]
    for split in ("train", "dev"):
        (root / "sst2" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.slow
def test_a_training_run_prints_no_noise(tiny_task, tmp_path):
    """A real `distill`: TensorFlow loads, a model is read, `fit` runs; stderr is empty."""
    argv = ["distill", "--stage", "intermediate", "--teacher", str(tiny_task / "teacher"),
            "--student-shape", "1L-16H-32I", "--task", "sst2",
            "--data-dir", str(tiny_task / "sst2"), "--seq-len", "32", "--batch-size", "16",
            "--epochs", "1", "--output", str(tmp_path / "runs")]
    result = run_cli(*argv)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "loss" in result.stdout


@pytest.mark.slow
def test_the_commands_on_jax(tiny_task, tmp_path, monkeypatch):
    """KERAS_BACKEND=jax: `distill` on two (XLA host) devices trains data-parallel;
    `evaluate` runs the model compiled by JAX and prints the accuracy TensorFlow
    prints; `export` switches itself to TensorFlow (one note) and writes a
    SavedModel that verifies."""
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    result = run_cli("distill", "--stage", "intermediate", "--teacher", str(tiny_task / "teacher"),
                     "--student-shape", "1L-16H-32I", "--task", "sst2", "--data-dir",
                     str(tiny_task / "sst2"), "--seq-len", "16", "--batch-size", "8",
                     "--epochs", "1", "--output", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    assert "strategy=JaxDataParallel (2 replicas)" in result.stdout
    (run,) = (tmp_path / "runs").glob("distill-intermediate-*")
    assert np.isfinite(json.loads((run / "history.json").read_text())["loss"]).all()
    monkeypatch.delenv("XLA_FLAGS")
    printed = {}
    for backend in ("tensorflow", "jax"):
        monkeypatch.setenv("KERAS_BACKEND", backend)
        result = run_cli("evaluate", "--model", str(tiny_task / "teacher"), "--data-dir",
                         str(tiny_task / "sst2"), "--seq-len", "16", "--latency")
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        printed[backend] = result.stdout.splitlines()
    accuracy = [[line for line in printed[b] if line.startswith("accuracy")] for b in printed]
    assert accuracy[0] == accuracy[1] and accuracy[0]
    assert any(line.startswith("latency_ms_batch32") for line in printed["jax"])
    result = run_cli("export", "--model", str(tiny_task / "teacher"), "--format", "saved_model",
                     "--output", str(tmp_path / "serving"), "--data", str(tiny_task / "sst2"),
                     "--num-verify", "16")
    assert result.returncode == 0, result.stderr
    assert "note: this command runs on tensorflow (KERAS_BACKEND=jax ignored here" in result.stdout
    assert "agreement" in result.stdout and (tmp_path / "serving" / "1").is_dir()
