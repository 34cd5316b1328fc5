"""Keras-style training callbacks: the hooks a training loop calls, and a list of them.

A loop (ours in `trainer/`, or a user's own) calls exactly these hooks:

  set_params({"epochs": E, "steps": S}) optional, first: epochs and steps per epoch, as Keras
  on_train_begin(state)
  on_epoch_begin(epoch, state)          epochs count from 1
  on_train_batch_end(step, state, logs) step: global optimizer steps done
  on_epoch_end(epoch, state, logs)      logs: host floats, e.g. {"eval_accuracy": 0.98}
  on_train_end(state)

`state` is what the model's kind accepts (see `callbacks.model`): an NNX
module or its `nnx.state`, a `flax.training.train_state.TrainState` (extra
fields such as `batch_stats` come along), any object with `.params`, or a
variables dict; `logs` may be None. A callback asks the loop
to stop by setting `self.stop_training = True`, and asks for per-batch metrics
in `on_train_batch_end` by setting `batch_logs = True` (it costs the loop a
device-to-host copy every step, so it is off by default).
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

import attribution
from attribution import method_sets

Logs = Mapping[str, float] | None


def checked_probes(probe_images: Any, probe_labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Probe images as float32 `[P, H, W, C]` and labels as int32 `[P]`, P > 0; else ValueError."""
    probe_images = np.asarray(probe_images, np.float32)
    probe_labels = np.asarray(probe_labels)
    if probe_images.ndim != 4 or len(probe_images) != len(probe_labels) or not len(
            probe_labels):
        raise ValueError(
            f"probe_images must be [P, H, W, C] and probe_labels [P] with P > 0; got "
            f"{probe_images.shape} and {probe_labels.shape}."
        )
    return probe_images, probe_labels.astype(np.int32)


def method_options(methods: Sequence[str] | Mapping[str, Mapping[str, Any]]
                   ) -> dict[str, dict[str, Any]]:
    """Method (or set) name -> options, from names or a mapping; unknown methods or options
    fail here. Sets (`attribution.method_sets`) stay until `expand_sets` knows the model."""
    if isinstance(methods, str):
        raise ValueError(f"methods must be a list of names or a mapping; got {methods!r}.")
    options = ({name: dict(opts) for name, opts in methods.items()}
               if isinstance(methods, Mapping) else {name: {} for name in methods})
    for name, opts in options.items():
        if name in method_sets.SETS:
            if opts:
                raise ValueError(f"The set {name!r} takes no options; give its members' "
                                 "options by their names.")
            continue
        attribution.get(name).check_options(opts)  # Fails here, before training.
    return options


def expand_sets(options: Mapping[str, dict[str, Any]], classifier: attribution.Classifier
                ) -> dict[str, dict[str, Any]]:
    """`options` with each set replaced by its members that apply to `classifier` (with their
    defaults, or the options given for them by name)."""
    if not method_sets.has_sets(options):
        return dict(options)
    names = method_sets.expand(list(options),
                               lambda: attribution.applicable_methods(classifier))
    return {name: dict(options.get(name, {})) for name in names}


class Callback:
    """Base class: every hook does nothing. Override the ones you need."""

    stop_training: bool = False
    batch_logs: bool = False
    # Whether a loop that checkpoints waits for all of this callback's background work first
    # (its `wait()`), so that a saved epoch implies its firing is on disk. False: the loop
    # calls `wait(before_step=step)` and the callback redoes a firing at the resume step itself.
    checkpoint_waits: bool = True

    def set_params(self, params: Mapping[str, Any]) -> None:
        pass

    def on_train_begin(self, state: Any) -> None:
        pass

    def on_epoch_begin(self, epoch: int, state: Any) -> None:
        pass

    def on_train_batch_end(self, step: int, state: Any, logs: Logs = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, state: Any, logs: Logs = None) -> None:
        pass

    def on_train_end(self, state: Any) -> None:
        pass


class CallbackList(Callback):
    """Calls each hook on every callback, in order; stops when any callback asks to."""

    def __init__(self, callbacks: Iterable[Callback] = ()):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"{callback!r} is not a callbacks.Callback; subclass it and override "
                    "on_train_begin / on_epoch_begin / on_train_batch_end / on_epoch_end / "
                    "on_train_end."
                )

    @property
    def stop_training(self) -> bool:
        return any(callback.stop_training for callback in self.callbacks)

    @property
    def batch_logs(self) -> bool:
        """Whether any callback asks for per-batch metrics."""
        return any(callback.batch_logs for callback in self.callbacks)

    def set_params(self, params):
        for callback in self.callbacks:
            callback.set_params(params)

    def on_train_begin(self, state):
        for callback in self.callbacks:
            callback.on_train_begin(state)

    def on_epoch_begin(self, epoch, state):
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch, state)

    def on_train_batch_end(self, step, state, logs=None):
        for callback in self.callbacks:
            callback.on_train_batch_end(step, state, logs)

    def on_epoch_end(self, epoch, state, logs=None):
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, state, logs)

    def on_train_end(self, state):
        for callback in self.callbacks:
            callback.on_train_end(state)
