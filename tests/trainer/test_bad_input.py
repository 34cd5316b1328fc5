"""Bad input writes nothing and says one line; damaged workdirs are named or repaired."""

import gzip
import json
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.trainer.test_train import CONFIG_DIR, load_config
from trainer import train
from trainer.workdir_lock import WorkdirLock

REPO = pathlib.Path(__file__).resolve().parents[2]


def _config(**fields):
    """The tiny CNN config, callbacks off unless a field turns them on; `a.b` names nest."""
    config = load_config(CONFIG_DIR / "cnn.py")
    with config.unlocked():
        config.attribution.enabled = False
        config.sanity.enabled = False
        for name, value in fields.items():
            *path, last = name.split("__")
            section = config
            for part in path:
                section = section[part]
            section[last] = value
    return config


BAD_FIELDS = [
    ({"num_epochs": 0}, "num_epochs must be an int >= 1; got 0"),
    ({"num_epochs": -1}, "num_epochs must be an int >= 1; got -1"),
    ({"batch_size": 0}, "batch_size must be an int >= 1"),
    ({"optimizer__learning_rate": float("nan")}, "learning_rate must be a finite number > 0"),
    ({"optimizer__name": "adamm"}, "adamm"),
    ({"model": "resnet"}, "resnet"),
    ({"data__source": "web"}, "Unknown data source 'web'"),
    ({"attribution__enabled": True, "attribution__methods": "gradinet"}, "gradinet"),
    ({"attribution__enabled": True, "attribution__percentile": 150.0},
     "percentile must be in \\(0, 100\\]; got 150"),
    ({"attribution__enabled": True, "attribution__schedule": "weekly"},
     "Unknown schedule 'weekly'"),
    ({"attribution__enabled": True, "attribution__scale": "global"}, "Unknown scale 'global'"),
    ({"attribution__probes_per_class": 0}, "probes_per_class must be an int >= 1"),
    ({"sanity__enabled": True, "sanity__num_probes": -2}, "num_probes must be an int >= 0"),
    ({"model": "mlp", "attribution__enabled": True, "attribution__methods": "grad_cam"},
     "grad_cam"),
    # The sanity section's own method, checked after the attribution section's (gradient is
    # in both).
    ({"model": "mlp", "attribution__enabled": True, "attribution__methods": "gradient",
      "sanity__enabled": True, "sanity__methods": "gradient,grad_cam"}, "grad_cam"),
    # The rest of the values the command line once checked one process each
    # (tests/trainer/test_cli.py keeps two, for the one-line message itself).
    ({"attribution__enabled": True, "attribution__targets": "best"}, "valid: label, predicted"),
    ({"attribution__enabled": True, "attribution__model_kwargs": "train"},
     "'train' is not name=<Python literal>"),
    ({"attribution__enabled": True, "attribution__logits": "1"},
     "logits=1 does not pick the logits"),
    ({"sanity__enabled": True, "sanity__metrics": "sparseness,pixel_flip"},
     "Unknown metric 'pixel_flip'; valid"),
    ({"sanity__enabled": True, "sanity__metric_every__robustness": -1},
     r"must be an int >= 0 \(0: never\); got -1"),
]


@pytest.mark.parametrize("fields, message", BAD_FIELDS,
                         ids=[",".join(f) for f, _ in BAD_FIELDS])
def test_bad_config_fails_in_one_line_and_writes_nothing(fields, message, tmp_path):
    workdir = tmp_path / "run"
    with pytest.raises(train.SetupError, match=message) as error:
        train.train_and_evaluate(_config(**fields), str(workdir), compilation_cache=True)
    assert "\n" not in " ".join(str(error.value).split())
    assert not workdir.exists()


def _idx_folder(folder, labels=None, corrupt_gzip=False):
    """The shared IDX files, with the training labels replaced or the images gzip damaged."""
    source = pathlib.Path(os.environ["MNIST_DIR"])
    folder.mkdir()
    for path in source.iterdir():
        if "idx" in path.name:
            shutil.copy(path, folder / path.name)
    if labels is not None:
        name = next(p for p in folder.iterdir() if p.name.startswith("train-labels"))
        raw = name.read_bytes()
        raw = gzip.decompress(raw) if name.suffix == ".gz" else raw
        raw = raw[:8] + bytes(labels) + raw[8 + len(labels):]
        name.write_bytes(gzip.compress(raw) if name.suffix == ".gz" else raw)
    if corrupt_gzip:
        name = next(p for p in folder.iterdir() if p.name.startswith("t10k-images"))
        data = gzip.compress(name.read_bytes()) if name.suffix != ".gz" else name.read_bytes()
        target = name if name.suffix == ".gz" else name.with_name(name.name + ".gz")
        if target != name:
            name.unlink()
        target.write_bytes(data[:40] + b"\x00" * 64 + data[104:])
    return folder


@pytest.mark.parametrize("damage, message", [
    ({"labels": [3, 12, 7]}, "labels outside 0-9 \\(e.g. 12\\)"),
    ({"corrupt_gzip": True}, "t10k-images.*cannot be read"),
])
def test_damaged_data_files_are_named(damage, message, tmp_path):
    folder = _idx_folder(tmp_path / "mnist", **damage)
    workdir = tmp_path / "run"
    with pytest.raises(train.SetupError, match=message):
        train.train_and_evaluate(_config(data__dir=str(folder), data__source="idx"),
                                 str(workdir))
    assert not workdir.exists()


@pytest.mark.slow
def test_cli_error_is_one_line_and_leaves_no_workdir(tmp_path):
    workdir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "trainer", "--config", "configs/cnn.py:tiny", "--workdir",
         str(workdir), "--config.attribution.methods=gradient,gradcam"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "gradcam" in errors[0] and "valid" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not workdir.exists()  # Not even the compilation cache.


def test_damaged_probes_file_is_named(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "probes.json").write_text('{"indices": [1, 2,')
    with pytest.raises(train.SetupError, match="probes.json is damaged"):
        train.train_and_evaluate(_config(attribution__enabled=True,
                                         attribution__methods="gradient"), str(workdir))
    assert sorted(os.listdir(workdir)) == ["probes.json"]


def test_a_workdir_in_use_is_refused_and_a_killed_holder_leaves_no_lock(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    lock = WorkdirLock(str(workdir))
    with pytest.raises(train.SetupError, match=f"in use by another run \\(process {os.getpid()}"):
        train.train_and_evaluate(_config(), str(workdir))
    lock.release()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from trainer.workdir_lock import WorkdirLock; "
        f"WorkdirLock({str(workdir)!r}); print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()  # SIGKILL: no cleanup runs, the kernel drops the lock.
    holder.wait()
    WorkdirLock(str(workdir)).release()


@pytest.mark.slow
def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    config = _config(num_epochs=2)
    straight = train.train_and_evaluate(_config(num_epochs=3), str(tmp_path / "straight"))
    workdir = tmp_path / "damaged"
    train.train_and_evaluate(config, str(workdir))
    # Damage every data file of epoch 2's checkpoint.
    for path in (workdir / "checkpoints" / "2").rglob("*"):
        if path.is_file() and path.stat().st_size > 64 and "metadata" not in path.name:
            path.write_bytes(path.read_bytes()[:16])
    with caplog.at_level("WARNING"):
        resumed = train.train_and_evaluate(_config(num_epochs=3), str(workdir))
    assert "checkpoint of epoch 2" in caplog.text and "damaged" in caplog.text
    # Epochs 2 and 3 trained again from epoch 1's checkpoint: the same as never interrupted.
    jax.tree.map(np.testing.assert_allclose, resumed.params, straight.params)


@pytest.mark.slow
def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_finite_checkpoint(tmp_path):
    workdir = tmp_path / "run"
    with pytest.raises(train.NonFiniteError, match=r"became NaN or infinite at step \d+ "
                                                   r"\(epoch 1\).*checkpoint is none"):
        train.train_and_evaluate(_config(optimizer__learning_rate=1e30), str(workdir))
    assert not (workdir / "checkpoints").exists() or not os.listdir(workdir / "checkpoints")
    summary = workdir / "summary.json"
    assert not summary.exists()


@pytest.mark.slow
def test_non_finite_maps_are_drawn_blank_with_a_warning(tmp_path):
    config = _config(optimizer__learning_rate=1e30, stop_on_nan=False, num_epochs=1,
                     attribution__enabled=True, attribution__methods="gradient",
                     attribution__schedule="epochs:1", attribution__at_start=False)
    with pytest.warns(RuntimeWarning, match="gradient maps hold NaN or inf"):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    with open(tmp_path / "run" / "summary.json") as f:
        assert np.isnan(json.load(f)["train_loss"])
