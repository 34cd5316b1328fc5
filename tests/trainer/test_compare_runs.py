"""Data randomization: the label permutation, and comparing two runs' maps (library and CLI)."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tests.trainer.test_train import CONFIG_DIR, load_config, scalars
from trainer import compare_runs, models, train

pytestmark = pytest.mark.slow  # End-to-end: see README, Tests.

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
METHODS = "gradient,guided_backprop"


def _tiny(name, sanity=False, schedule="epochs:1"):
    """A one-epoch tiny run that stores its probes; with `sanity`, the gradient's checks."""
    config = load_config(CONFIG_DIR / name)
    with config.unlocked():
        config.num_epochs = 1
        config.attribution.methods = "gradient"
        config.attribution.at_start = False
        config.attribution.schedule = schedule
        config.sanity.enabled = sanity
    return config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Workdirs of a tiny normal run and a tiny random-label run."""
    root = tmp_path_factory.mktemp("runs")
    train.train_and_evaluate(_tiny("cnn.py"), str(root / "cnn"))
    train.train_and_evaluate(_tiny("cnn_random_labels.py", sanity=True, schedule="steps:3"),
                             str(root / "random"))
    return str(root / "cnn"), str(root / "random")


def test_the_trainer_fires_on_the_configured_schedule(runs):
    # 8 steps per epoch: every epoch end is step 8; every 3 steps is 3 and 6.
    assert [step for step, _ in scalars(runs[0])["probes/accuracy"]] == [8]
    assert [step for step, _ in scalars(runs[1])["probes/accuracy"]] == [3, 6]


def test_random_labels_permute_only_training_labels():
    plain = train.load_data(_tiny("cnn.py"))
    config = _tiny("cnn_random_labels.py")
    assert config.data.random_labels and not _tiny("cnn.py").data.random_labels
    permuted, again = train.load_data(config), train.load_data(config)
    np.testing.assert_array_equal(permuted.train_labels, again.train_labels)  # fixed
    np.testing.assert_array_equal(permuted.train_images, plain.train_images)
    np.testing.assert_array_equal(permuted.eval_images, plain.eval_images)
    np.testing.assert_array_equal(permuted.eval_labels, plain.eval_labels)
    # The same labels, moved: class counts kept, most digits relabelled.
    np.testing.assert_array_equal(np.sort(permuted.train_labels), np.sort(plain.train_labels))
    assert np.mean(permuted.train_labels == plain.train_labels) < 0.2


def test_permuted_labels_depend_on_the_seed_only():
    labels = np.arange(100) % 10
    a = train.permuted_labels(labels, 0)
    np.testing.assert_array_equal(a, train.permuted_labels(labels.copy(), 0))
    assert not np.array_equal(a, train.permuted_labels(labels, 1))
    np.testing.assert_array_equal(np.bincount(a), np.bincount(labels))


def test_training_logs_sanity_scores_at_the_end(runs):
    # The trainer's wiring: the config's sanity section, every 2 epochs over 1 epoch (8 steps),
    # so the callback fires once, at the end (global step 8), on the attribution probes.
    logged = scalars(runs[1])
    for tag in ("sanity/gradient/cascading_spearman_abs", "sanity/gradient/input_invariance",
                "sanity/gradient/deletion_auc", "sanity/gradient/independent_ssim/Conv_0"):
        assert [step for step, _ in logged[tag]] == [8], tag
    assert not any(tag.startswith("sanity") for tag in scalars(runs[0]))


def test_a_run_compared_with_itself_scores_one(runs):
    config = _tiny("cnn.py")
    shape = (28, 28, 1)
    variables, epoch = compare_runs.restore_final(config, runs[0], shape)
    assert epoch == 1
    splits = train.load_data(config)
    probes = compare_runs.stored_probes([runs[0]])
    assert len(probes) == 10  # tiny: one probe per class, from probes.json
    scores = compare_runs.compare_maps(
        models.create_model("cnn"), variables, variables, splits.eval_images[probes],
        splits.eval_labels[probes], {"gradient": {}})
    for row in scores.values():
        for value in row.values():
            assert value == pytest.approx(1.0, abs=1e-5)


def test_cli_prints_a_row_per_method(runs):
    result = subprocess.run(
        [sys.executable, "-m", "trainer.compare_runs", "--config", "configs/cnn.py:tiny",
         "--workdir_a", runs[0], "--workdir_b", runs[1], "--methods", METHODS],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    header, columns, *rows = result.stdout.strip().splitlines()[-4:]
    assert "epoch 1" in header and "10 probes" in header
    assert columns.split() == ["method", "spearman_abs", "spearman_signed", "ssim"]
    assert [row.split()[0] for row in rows] == METHODS.split(",")
    values = np.array([[float(v) for v in row.split()[1:]] for row in rows])
    assert np.all(np.abs(values) <= 1.0)
    assert np.all(values[:, 0] < 0.999)  # Different weights give different maps.


def test_missing_run_fails_before_loading_anything(runs, tmp_path):
    with pytest.raises(ValueError, match="No checkpoints in .*none"):
        compare_runs.compare_runs(_tiny("cnn.py"), runs[0], str(tmp_path / "none"))
