"""ScheduledCallback: the hook bookkeeping shared by callbacks that fire on a schedule.

It turns the loop's hooks into `fire(step, state)` calls at the schedule's global steps, each
step at most once and in increasing order (a step-based and an epoch-end firing that coincide,
or a resumed run replaying a step, fire once), and keeps what labels a firing: its global
step and, once known, the steps per epoch.
"""

from typing import Any

from callbacks.base import Callback, Logs
from callbacks.schedule import Schedule, parse


class ScheduledCallback(Callback):
    """Subclasses implement `fire(step, state)` and may extend `on_train_begin`."""

    def __init__(self, schedule: str | Schedule, at_start: bool):
        self.schedule = parse(schedule)
        self.at_start = bool(at_start)
        self.last_step = 0  # Global optimizer steps done, as the loop reported them.
        self.last_fired: int | None = None
        self.steps_per_epoch: int | None = None
        self._epoch: int | None = None
        self._step_reported = False

    def set_params(self, params: dict) -> None:
        """`params["steps"]`, the steps per epoch, labels firings with epochs from the start
        (without it, they are learned at the first epoch end)."""
        steps = (params or {}).get("steps")
        if steps:
            self.steps_per_epoch = int(steps)

    def fire(self, step: int, state: Any) -> Any:
        raise NotImplementedError

    def wants_step(self, step: int) -> bool:
        """Whether `on_train_batch_end(step, ...)` would fire (loops may skip syncing state)."""
        return self.schedule.after_step(step, self._epoch) and self._is_new(step)

    def epoch_of(self, step: int) -> float | None:
        """Epochs done at global step `step`; None while the steps per epoch are unknown."""
        return step / self.steps_per_epoch if self.steps_per_epoch else None

    # Hooks -------------------------------------------------------------------------------------

    def on_train_begin(self, state: Any) -> None:
        """Fires at step 0 on a fresh run; on a resumed one (the state's `step` > 0), at the
        resume step if it is an epoch end the schedule fires at and a subclass that keeps a
        history (`last_fired` set) lacks it: a run killed before that firing was written."""
        step = self.last_step = int(getattr(state, "step", 0) or 0)
        if step == 0 and self.at_start and self.schedule.at_start():
            self._fire_once(0, state)
        elif (step and self.last_fired is not None and self.steps_per_epoch
              and step % self.steps_per_epoch == 0
              and self.schedule.at_epoch_end(step // self.steps_per_epoch)):
            self._fire_once(step, state)

    def on_epoch_begin(self, epoch: int, state: Any) -> None:
        self._epoch = epoch

    def note_step(self, step: int) -> None:
        """Records that optimizer step `step` is done, without firing (see `wants_step`)."""
        self.last_step, self._step_reported = int(step), True

    def on_train_batch_end(self, step: int, state: Any, logs: Logs = None) -> None:
        self.note_step(step)
        if self.wants_step(self.last_step):
            self._fire_once(self.last_step, state)

    def on_epoch_end(self, epoch: int, state: Any, logs: Logs = None) -> None:
        self._epoch = epoch
        if self._step_reported and self.last_step and not self.steps_per_epoch:
            self.steps_per_epoch = self.last_step // epoch  # Steps count from 0 at epoch 0.
        if not self._step_reported:  # A loop that reports no steps: the state's, else the epoch.
            self.last_step = int(getattr(state, "step", epoch) or epoch)
        if self.schedule.at_epoch_end(epoch):
            self._fire_once(self.last_step, state)

    # -------------------------------------------------------------------------------------------

    def _is_new(self, step: int) -> bool:
        return self.last_fired is None or step > self.last_fired

    def _fire_once(self, step: int, state: Any) -> None:
        if self._is_new(step):
            self.fire(step, state)
            self.last_fired = step
