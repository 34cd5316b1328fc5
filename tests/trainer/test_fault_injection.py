"""Killed at any moment and rerun: every tag has every step exactly once, and the run ends
where an uninterrupted one does."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
from tensorboard.backend.event_processing import event_accumulator

pytestmark = pytest.mark.slow  # End-to-end: see README, Tests.

REPO = pathlib.Path(__file__).resolve().parents[2]
ARGS = ["--config", "configs/cnn.py:tiny", "--config.num_epochs=3",
        "--config.data.max_train_examples=2048",  # 32 steps per epoch: time to kill mid-epoch
        "--config.attribution.methods=gradient,grad_cam", "--config.sanity.independent=False",
        "--config.sanity.schedule=epochs:1"]


def _run(workdir, trigger=None, sig=None, delay=0.0):
    """Runs the command line; with `trigger`, sends `sig` `delay` s after that log line."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "trainer", "--workdir", str(workdir), *ARGS],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = []
    for line in process.stderr:
        lines.append(line)
        if trigger is not None and trigger in line:
            time.sleep(delay)
            process.send_signal(sig)
            trigger = None
    process.wait(timeout=300)
    return process.returncode, "".join(lines)


def _events(workdir):
    acc = event_accumulator.EventAccumulator(str(workdir), size_guidance={
        "scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    steps = {tag: [e.step for e in acc.Scalars(tag)] for tag in tags["scalars"]}
    steps.update({tag: [e.step for e in acc.Images(tag)] for tag in tags["images"]})
    return steps, {tag: acc.Scalars(tag)[-1].value for tag in ("loss/eval", "accuracy/eval")}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("straight") / "run"
    code, log = _run(workdir)
    assert code == 0, log[-3000:]
    return _events(workdir)


def test_killed_six_times_then_resumed_equals_an_uninterrupted_run(uninterrupted, tmp_path):
    workdir = tmp_path / "run"
    faults = [
        ("Compiling the attribution callback", signal.SIGKILL, 0.5),  # during compile
        ("Watch it:", signal.SIGINT, 1.0),  # in epoch 1, after the step-0 firing
        ("epoch 1/3", signal.SIGKILL, 0.0),  # right after an epoch line
        ("Compiling the sanity callback", signal.SIGINT, 0.2),  # Ctrl-C while compiling
        ("epoch 2/3", signal.SIGINT, 0.4),  # Ctrl-C in the middle of epoch 3
        ("Resuming after epoch 2", signal.SIGKILL, 2.4),  # late in epoch 3: its firings
    ]
    for trigger, sig, delay in faults:
        code, log = _run(workdir, trigger, sig, delay)
        if code == 0:  # The run finished before the signal landed: nothing to resume.
            break
        assert code in (-signal.SIGKILL, 130), log[-3000:]
        if sig == signal.SIGINT:
            assert "Traceback" not in log, log[-3000:]
            interrupted = [line for line in log.splitlines() if "Interrupted" in line]
            assert len(interrupted) == 1 and "rerun the same command" in interrupted[0]
    code, log = _run(workdir)
    assert code == 0, log[-3000:]
    steps, final = _events(workdir)
    expected_steps, expected_final = uninterrupted
    assert set(steps) == set(expected_steps)
    for tag, logged in steps.items():
        assert logged == expected_steps[tag], tag  # every step once, in order
    assert final == pytest.approx(expected_final, abs=1e-6)
