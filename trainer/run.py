"""A trained (or interrupted) run, loaded back: its model, variables, config and probes.

    from trainer import load_run

    run = load_run("runs/cnn")
    maps = attribution.explain("integrated_gradients", run.model, run.variables,
                               run.probe_images, run.probe_labels)
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from attribution.model_kinds import kind_of
from callbacks.history import history_dir
from callbacks.probes import read_probes
from trainer import data, models, steps
from trainer.checkpoints import EpochCheckpoints, saved_epochs

CONFIG_FILE = "config.json"  # The run's config, written when it starts.


@dataclasses.dataclass
class Run:
    """What `load_run` gives back.

    Attributes:
      model: the model the config names, as the trainer built it.
      variables: its variables after `epoch` (what `attribution.explain` takes: for linen
        `{"params", "batch_stats"}`, for NNX the state).
      config: the run's config (locked).
      epoch: the last finished epoch whose checkpoint restored.
      probe_images: float32 [P, 28, 28, 1] the callbacks explained; probe_labels: int32 [P].
      workdir: where it was loaded from.
    """

    model: Any
    variables: Any
    config: ml_collections.ConfigDict
    epoch: int
    probe_images: np.ndarray
    probe_labels: np.ndarray
    workdir: str


def abstract_train_state(config: ml_collections.ConfigDict,
                         input_shape: tuple[int, ...] = data.IMAGE_SHAPE) -> Any:
    """The config's TrainState as shapes only: a template to restore into, compiling nothing
    (drawing real initial weights would compile the random draws for nothing)."""
    model = models.create_model(config.model, seed=config.seed)
    return jax.eval_shape(lambda: steps.create_train_state(
        model, jax.random.PRNGKey(config.seed), input_shape,
        steps.make_optimizer(**config.optimizer)))


def restore_final(config: ml_collections.ConfigDict, workdir: str,
                  input_shape: tuple[int, ...] = data.IMAGE_SHAPE) -> tuple[Any, int]:
    """The model's variables in the newest intact checkpoint in `workdir`, and its epoch.

    The variables are what the attribution engine takes for `create_model(config.model)`:
    `{"params": ..., "batch_stats": ...}` for a linen model, the state for an NNX one.
    Nothing is written or compiled.

    Raises:
        ValueError: If `workdir` holds no checkpoint that restores.
    """
    if not saved_epochs(workdir):
        raise ValueError(f"No checkpoints in {workdir!r}; train a run there first.")
    checkpoints = EpochCheckpoints(workdir)
    try:
        epoch, state = checkpoints.restore_latest_intact(
            abstract_train_state(config, input_shape), delete_damaged=False)
    finally:
        checkpoints.close()
    if state is None:
        raise ValueError(f"No checkpoint in {workdir!r} restores: all are damaged.")
    model = models.create_model(config.model, seed=config.seed)
    return kind_of(model).variables_of(state), epoch


def load_run(workdir: str) -> Run:
    """Loads a run the trainer wrote to `workdir` (finished or interrupted).

    Raises:
      FileNotFoundError: `workdir` holds no run (no config.json).
      ValueError: it holds no checkpoint that restores.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No run in {workdir!r}: {path} is missing (a run written "
                                "by `python -m trainer` has it from its start).")
    with open(path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    config.lock()
    variables, epoch = restore_final(config, workdir)
    images, labels = _probes(config, workdir)
    return Run(models.create_model(config.model, seed=config.seed), variables, config, epoch,
               images, labels, workdir)


def _probes(config: ml_collections.ConfigDict, workdir: str) -> tuple[np.ndarray, np.ndarray]:
    """The probe digits: from the history (no data needed), else the data and probes.json."""
    stored = os.path.join(history_dir(workdir), "probes.npz")
    if os.path.exists(stored):
        with np.load(stored) as probes:
            return probes["images"], probes["labels"]
    from trainer.train import load_data  # The data only when the history is not there.

    splits = load_data(config)
    chosen = read_probes(workdir, len(splits.eval_labels))
    if chosen is None:
        return splits.eval_images[:0], splits.eval_labels[:0]
    return splits.eval_images[chosen], splits.eval_labels[chosen]
