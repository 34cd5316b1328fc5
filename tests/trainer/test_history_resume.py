"""A run killed twice and resumed: every firing once, in step order, in TensorBoard and in the
history; the history command prints what TensorBoard shows."""

import io
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image
from scipy import stats
from tensorboard.backend.event_processing import event_accumulator

from callbacks import grids, load_history
from callbacks.base import Callback
from tests.trainer.test_train import CONFIG_DIR, load_config
from trainer import train

pytestmark = pytest.mark.slow  # End-to-end: see README, Tests.

FIRINGS = [0, 1, 2, 4, 8, 16, 24, 32]  # Log-spaced, 8 steps per epoch, 4 epochs.


class _KillAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, step, state, logs=None):
        if step == self.step:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    config = load_config(CONFIG_DIR / "cnn.py")  # tiny: 512 digits, batch 64
    with config.unlocked():
        config.num_epochs = 4
        config.attribution.methods = "gradient,grad_cam"
        config.sanity.methods = "gradient"
        config.sanity.schedule = "at:3,10,20"  # Mixed with the attribution's log schedule.
        config.sanity.independent = False
    workdir = tmp_path_factory.mktemp("runs") / "cnn"
    # Killed at step 12 (checkpoint: epoch 1, step 8; sanity fired at 10) and at step 21
    # (checkpoint: step 16; sanity fired at 20): those steps are trained and logged again.
    for kill in (12, 21):
        with pytest.raises(KeyboardInterrupt):
            train.train_and_evaluate(config, str(workdir), callbacks=[_KillAt(kill)])
    train.train_and_evaluate(config, str(workdir))
    return config, workdir


def _accumulator(workdir):
    """All event files of the run, as TensorBoard loads them (later sessions purge)."""
    acc = event_accumulator.EventAccumulator(str(workdir), size_guidance={"images": 0,
                                                                          "scalars": 0})
    acc.Reload()
    return acc


def test_every_firing_once_in_step_order(resumed_run):
    _, workdir = resumed_run
    acc = _accumulator(workdir)
    for tag in ("attributions/overview", "methods/gradient", "evolution/grad_cam"):
        assert [e.step for e in acc.Images(tag)] == FIRINGS, tag
    assert [e.step for e in acc.Scalars("probes/accuracy")] == FIRINGS
    assert [e.step for e in acc.Scalars("drift/gradient/to_previous")] == FIRINGS[1:]
    assert [e.step for e in acc.Scalars("sanity/gradient/cascading_ssim")] == [3, 10, 20, 32]
    assert [e.step for e in acc.Scalars("loss/eval")] == [8, 16, 24, 32]
    assert load_history(workdir).steps.tolist() == FIRINGS


def test_evolution_strip_spans_every_firing_and_matches_the_history(resumed_run):
    config, workdir = resumed_run
    history = load_history(workdir)
    section = config.attribution
    for name in history.methods:
        png = _accumulator(workdir).Images(f"evolution/{name}")[-1].encoded_image_string
        logged = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
        columns = [grids.column_label(int(s), e) for s, e in zip(history.steps, history.epochs,
                                                                  strict=True)]
        clips = np.stack([grids.clip_values(m, history.signed[name], section.percentile)
                          for m in history.maps[name]])
        rendered = grids.evolution(history.maps[name], history.signed[name], clips,
                                   section.scale, history.labels, columns,
                                   grids.legend([name], history.signed, section.scale,
                                                section.percentile)).astype(int)
        assert logged.shape == rendered.shape  # 8 columns, "step S / epoch E" headers
        # The history keeps the maps to float16: a colour may move by a step of the colormap.
        assert np.abs(logged - rendered).max() <= 8, name
        assert np.mean(logged != rendered) < 0.01, name


def test_drift_equals_a_hand_computation_on_the_stored_maps(resumed_run):
    _, workdir = resumed_run
    history = load_history(workdir)
    logged = {e.step: e.value for e in _accumulator(workdir).Scalars(
        "drift/grad_cam/to_previous")}
    maps = history.maps["grad_cam"]
    for k in range(1, len(FIRINGS)):
        # A constant map (a dead Grad-CAM early on) correlates 0 by the documented rule.
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            expected = np.mean([np.nan_to_num(stats.spearmanr(
                np.abs(a.sum(-1)).ravel(), np.abs(b.sum(-1)).ravel())[0])
                for a, b in zip(maps[k - 1], maps[k], strict=True)])
        assert history.drift["grad_cam"]["to_previous"][k] == pytest.approx(expected, abs=2e-3)
        assert logged[FIRINGS[k]] == pytest.approx(history.drift["grad_cam"]["to_previous"][k],
                                                   abs=1e-6)


def test_history_command_prints_the_drift_table_and_writes_the_gif(resumed_run):
    _, workdir = resumed_run
    result = subprocess.run([sys.executable, "-m", "trainer.history", "--workdir", str(workdir)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    rows = {int(line.split()[0]): line.split()[2:] for line in lines
            if line.split() and line.split()[0].isdigit()}
    assert sorted(rows) == FIRINGS
    history = load_history(workdir)
    for k, step in enumerate(FIRINGS[1:], 1):
        assert [float(v) for v in rows[step]] == pytest.approx(
            [history.drift[m]["to_previous"][k] for m in history.methods], abs=5e-4)
    assert any(line.startswith("settled") for line in map(str.strip, lines))
    with Image.open(workdir / "history" / "overview.gif") as gif:
        assert gif.n_frames == len(FIRINGS)
    bad = subprocess.run([sys.executable, "-m", "trainer.history", "--workdir",
                          str(workdir / "nothing")], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "No attribution history" in bad.stderr
