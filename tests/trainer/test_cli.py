"""The command line fails early, in one line, on bad input, and runs a small config."""

import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # End-to-end: see README, Tests.

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_cli(*args, timeout=300, env=None):
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=timeout, env=env,
    )


def last_line(result):
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--config.num_epochz=3"], "num_epochz"),
        (["--config.num_epochs=three"], "three"),
        (["--config.optimizer.learning_rte=0.1"], "learning_rte"),
    ],
    ids=["misspelled", "wrong-type", "misspelled-nested"],
)
def test_bad_override_one_line_error(args, expected, tmp_path):
    result = run_cli("--config", "configs/cnn.py:tiny", "--workdir", str(tmp_path), *args)
    assert result.returncode != 0
    assert expected in last_line(result)
    assert "Traceback" not in result.stderr
    assert not os.listdir(tmp_path)  # nothing written


def test_missing_workdir_one_line_error():
    result = run_cli("--config", "configs/cnn.py:tiny")
    assert result.returncode != 0
    assert "workdir" in last_line(result) and "Traceback" not in result.stderr


def test_unwritable_workdir_one_line_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run_cli("--config", "configs/cnn.py:tiny", "--workdir", str(blocker / "run"))
    assert result.returncode != 0
    assert "not writable" in last_line(result) and "Traceback" not in result.stderr


def test_runs_a_small_config_with_overrides(tmp_path):
    # Without the suite's shared cache folder and XLA flags (tests/conftest.py), as a user
    # runs it.
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS" and not k.startswith("JAX_")}
    result = run_cli("--config", "configs/mlp.py:tiny", "--workdir", str(tmp_path),
                     "--config.num_epochs=1", "--config.optimizer.learning_rate=0.002", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "epoch 1/1" in result.stderr and "examples/s" in result.stderr
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path))
    # The command that shows every firing's images (TensorBoard keeps 10 per tag by default).
    assert f"tensorboard --logdir {tmp_path.parent} --samples_per_plugin images=" in (
        result.stderr)
    # The persistent compilation cache: a rerun loads the compiled programs from here.
    assert len(os.listdir(tmp_path / "jax_cache")) >= 3


# Two bad values through the command line: a SetupError from the config's checks becomes its
# one line. Every other bad value is checked in-process, with its message and nothing written
# (tests/trainer/test_bad_input.py), without starting an interpreter for each.
@pytest.mark.parametrize(
    "override, expected",
    [
        ("--config.attribution.methods=gradient,gradient_magic", "valid methods"),
        ("--config.sanity.metric_every.robustness=-1", "must be an int >= 0 (0: never); got -1"),
    ],
    ids=["method", "metric_every"],
)
def test_bad_config_value_one_line_error(override, expected, tmp_path):
    result = run_cli("--config", "configs/cnn.py:tiny", "--workdir", str(tmp_path), override)
    assert result.returncode != 0
    assert expected in last_line(result) and "Traceback" not in result.stderr
    # Nothing written but the compilation cache.
    assert set(os.listdir(tmp_path)) <= {"jax_cache"}


def test_method_that_does_not_apply_fails_before_training(tmp_path):
    result = run_cli("--config", "configs/mlp.py:tiny", "--workdir", str(tmp_path),
                     "--config.attribution.methods=gradient,grad_cam")
    assert result.returncode != 0
    assert "grad_cam" in last_line(result) or "Grad-CAM" in last_line(result)
    assert "epoch 1/" not in result.stderr
    assert not os.path.exists(tmp_path / "checkpoints")
