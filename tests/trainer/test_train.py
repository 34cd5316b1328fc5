"""The training loop end to end: every config's small variant, resume, callbacks, TensorBoard."""

import glob
import importlib.util
import os
import pathlib

import jax
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

import attribution
from callbacks import event_files
from callbacks.base import Callback
from callbacks.schedule import parse as parse_schedule
from trainer import compare_runs, models, train
from trainer import verdict as verdict_command

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[2] / "configs"
CONFIG_FILES = sorted(p for p in CONFIG_DIR.glob("*.py") if p.name != "__init__.py")
EPOCH_SCALARS = {"loss/train", "accuracy/train", "loss/eval", "accuracy/eval"}
# Eight fixed images on which a tiny run's trained state gives its evaluation-mode logits.
TINY_RUN_IMAGES = np.random.default_rng(0).uniform(size=(8, 28, 28, 1)).astype(np.float32)


def load_config(path: pathlib.Path, arg: str | None = "tiny"):
    spec = importlib.util.spec_from_file_location(f"config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def tensor_tags(workdir) -> set[str]:
    """Tags of tensor events (text, hparams) in the workdir's event files."""
    tags = set()
    for path in glob.glob(os.path.join(workdir, "events.out.tfevents.*")):
        acc = event_accumulator.EventAccumulator(path, size_guidance={"tensors": 0})
        acc.Reload()
        tags |= set(acc.Tags()["tensors"])
    return tags


def scalars(workdir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in the workdir's event files, as TensorBoard reads them."""
    series = {}
    for path in glob.glob(os.path.join(workdir, "events.out.tfevents.*")):
        acc = event_accumulator.EventAccumulator(path, size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            series.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return {tag: sorted(points) for tag, points in series.items()}


def _distinct(paths: list[pathlib.Path]) -> list[pathlib.Path]:
    """One config file per distinct small variant: `default.py:tiny` is `cnn.py:tiny`, field
    for field, and one run checks both."""
    first = {}
    for path in paths:
        first.setdefault(load_config(path).to_json(), path)
    return list(first.values())


DISTINCT_CONFIG_FILES = _distinct(CONFIG_FILES)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=[p.stem for p in CONFIG_FILES])
@pytest.mark.parametrize("variant", [None, "tiny"])
def test_every_config_is_locked(path, variant):
    config = load_config(path, variant)
    assert config.is_locked
    with pytest.raises(AttributeError):
        config.no_such_field = 1  # locked: a misspelled override fails


@pytest.mark.slow
@pytest.mark.parametrize("path", DISTINCT_CONFIG_FILES, ids=[p.stem for p in DISTINCT_CONFIG_FILES])
def test_config_small_variant_trains_end_to_end(path, tiny_run):
    config = load_config(path)
    run = tiny_run(path.name)  # Trained once per session (TensorBoard's test reads cnn_gap's).
    workdir = run["workdir"]
    steps_per_epoch = config.data.max_train_examples // config.batch_size
    assert run["step"] == config.num_epochs * steps_per_epoch
    logged = scalars(workdir)
    assert EPOCH_SCALARS <= set(logged)
    for tag in EPOCH_SCALARS:  # At the global step of each epoch's end.
        assert [step for step, _ in logged[tag]] == [
            steps_per_epoch * e for e in range(1, config.num_epochs + 1)]
        assert all(np.isfinite(v) for _, v in logged[tag])
    # The model learned something even in a few seconds.
    assert logged["loss/train"][-1][1] < logged["loss/train"][0][1]
    # The attribution callback fired on the config's schedule (log-spaced: steps 0, 1, 2, 4
    # through the first epoch, then every epoch end), its probe scalars at those steps.
    schedule = parse_schedule(config.attribution.schedule)
    assert [s for s, _ in logged["probes/accuracy"]] == [
        0, *schedule.firings(config.num_epochs, steps_per_epoch)]
    # The sanity callback wrote its verdict table at every firing (the command prints the last).
    sanity_steps = sorted(s for s, _ in logged["timing/sanity_ms"])
    verdicts = event_files.texts(str(workdir), "sanity/verdict")
    assert sanity_steps and sorted(verdicts) == sanity_steps
    last = verdicts[sanity_steps[-1]]
    assert last.startswith(f"**Verdict at step {sanity_steps[-1]}**")
    for method in train.sanity_methods(config):
        row = next(line for line in last.splitlines() if line.startswith(f"| {method} |"))
        cells = row.strip("| ").split(" | ")[1:]
        assert len(cells) == 6 and all(c == "n.a." or c.split()[1] in ("pass", "fail")
                                       for c in cells), row
    assert verdict_command.main(str(workdir)) == last
    assert len(os.listdir(workdir / "checkpoints")) >= 1
    assert any(tag.startswith("config") for tag in tensor_tags(workdir))
    # The last checkpoint gives the engine the trained model (linen or NNX, BatchNorm
    # statistics included), which computes the trainer's own evaluation-mode logits.
    variables, epoch = compare_runs.restore_final(config, str(workdir), (28, 28, 1))
    assert epoch == config.num_epochs
    classifier = attribution.as_classifier(
        models.create_model(config.model, seed=config.seed), variables, (28, 28, 1))
    np.testing.assert_allclose(classifier.logits(variables, TINY_RUN_IMAGES), run["logits"],
                               rtol=1e-5, atol=1e-5)


class _InterruptAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, epoch, state):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _tiny_cnn(num_epochs=3, config_file="cnn.py"):
    """The loop alone: attribution (tested by the config runs above) would only add compile time."""
    config = load_config(CONFIG_DIR / config_file)
    with config.unlocked():
        config.num_epochs = num_epochs
        config.attribution.enabled = False
        config.sanity.enabled = False
    return config


@pytest.mark.slow
@pytest.mark.parametrize("config_file", ["cnn_bn.py", "cnn_nnx.py"])
def test_resume_after_interrupt_matches_uninterrupted_run(config_file, tmp_path):
    """Linen with BatchNorm + Dropout, and NNX, resume exactly (statistics too)."""
    config = _tiny_cnn(config_file=config_file)
    straight = train.train_and_evaluate(config, str(tmp_path / "straight"))

    workdir = str(tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        train.train_and_evaluate(config, workdir, callbacks=[_InterruptAt(3)])
    # Flushed on Ctrl-C: the two finished epochs are on disk.
    steps_per_epoch = config.data.max_train_examples // config.batch_size
    assert [s for s, _ in scalars(workdir)["loss/eval"]] == [steps_per_epoch, 2 * steps_per_epoch]
    resumed = train.train_and_evaluate(config, workdir)

    assert int(resumed.step) == int(straight.step)
    jax.tree.map(np.testing.assert_allclose, resumed.params, straight.params)
    jax.tree.map(np.testing.assert_allclose, resumed.batch_stats, straight.batch_stats)
    assert jax.tree.leaves(resumed.batch_stats)  # BatchNorm statistics were trained.
    # Steps do not repeat in TensorBoard after the resume.
    assert [s for s, _ in scalars(workdir)["loss/eval"]] == [
        steps_per_epoch * e for e in (1, 2, 3)]


class _Recorder(Callback):
    batch_logs = True

    def __init__(self, stop_after=None):
        self.calls, self.stop_after = [], stop_after

    def on_train_begin(self, state):
        self.calls.append(("train_begin", int(state.step)))

    def on_epoch_begin(self, epoch, state):
        self.calls.append(("epoch_begin", epoch))

    def on_train_batch_end(self, step, state, logs):
        self.calls.append(("batch_end", step, sorted(logs)))

    def on_epoch_end(self, epoch, state, logs):
        self.calls.append(("epoch_end", epoch, sorted(logs)))
        self.stop_training = epoch == self.stop_after

    def on_train_end(self, state):
        self.calls.append(("train_end", int(state.step)))


@pytest.mark.slow
def test_hooks_order_and_stop_request(tmp_path):
    config = _tiny_cnn(num_epochs=3)
    recorder = _Recorder(stop_after=2)
    state = train.train_and_evaluate(config, str(tmp_path), callbacks=[recorder])
    steps_per_epoch = config.data.max_train_examples // config.batch_size
    assert int(state.step) == 2 * steps_per_epoch  # stopped after epoch 2 of 3
    names = [c[0] for c in recorder.calls]
    assert names[0] == "train_begin" and names[-1] == "train_end"
    assert names.count("epoch_begin") == 2 and names.count("batch_end") == 2 * steps_per_epoch
    batch_steps = [c[1] for c in recorder.calls if c[0] == "batch_end"]
    assert batch_steps == list(range(1, 2 * steps_per_epoch + 1))
    epoch_end = [c for c in recorder.calls if c[0] == "epoch_end"]
    assert epoch_end[0][2] == ["eval_accuracy", "eval_loss", "train_accuracy", "train_loss"]


@pytest.mark.slow
def test_same_seed_same_run(tmp_path):
    config = _tiny_cnn(num_epochs=1)
    a = train.train_and_evaluate(config, str(tmp_path / "a"))
    b = train.train_and_evaluate(config, str(tmp_path / "b"))
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)


def test_tensorboard_command_shows_every_firing():
    # 10 epochs of 78 steps, log-spaced: steps 0, 1, 2, 4, ..., 64, then 10 epoch ends. The
    # workdir's parent is the log directory: the run shows as "cnn", not ".".
    config = load_config(CONFIG_DIR / "cnn.py", None)
    assert train.tensorboard_command(config, "runs/cnn", 78) == (
        "tensorboard --logdir runs --samples_per_plugin images=18")
    with config.unlocked():
        config.attribution.schedule = "steps:10"
    assert train.tensorboard_command(config, "w/", 78) == (
        f"tensorboard --logdir . --samples_per_plugin images={1 + 780 // 10}")
