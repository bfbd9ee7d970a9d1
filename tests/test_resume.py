"""Kill a distillation with SIGKILL mid-epoch; the same command resumes and matches."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

JOB = os.path.join(os.path.dirname(__file__), "resume_job.py")


def run(*args):
    out = subprocess.run([sys.executable, JOB, *map(str, args)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def backup_step(backup_dir):
    try:
        with open(os.path.join(backup_dir, "backup.json")) as f:
            return json.load(f)["step"]
    except (OSError, ValueError):
        return -1


@pytest.mark.slow
def test_killed_run_resumes_and_equals_an_uninterrupted_one(tmp_path):
    reference = run(tmp_path / "ref_backup", tmp_path / "ref.npz")
    assert "resumed_from_step 0" in reference and "steps 24" in reference

    backup = tmp_path / "backup"
    proc = subprocess.Popen([sys.executable, JOB, backup, tmp_path / "run.npz",
                             "--sleep", "0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while backup_step(backup) < 9 and time.time() < deadline:  # inside epoch 2
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = backup_step(backup)
    assert 9 <= killed_at < 24 and killed_at % 8 != 0, killed_at  # mid-epoch
    assert not (tmp_path / "run.npz").exists()

    resumed = run(backup, tmp_path / "run.npz")
    assert f"resumed_from_step {killed_at}" in resumed and "steps 24" in resumed
    ref, got = np.load(tmp_path / "ref.npz"), np.load(tmp_path / "run.npz")
    assert len(ref.files) == len(got.files) > 10
    for key in ref.files:
        np.testing.assert_array_equal(got[key], ref[key])
