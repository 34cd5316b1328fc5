"""When a callback fires: every N epochs, every N steps, at listed steps, or log-spaced.

A schedule answers two questions a callback asks its loop's hooks: fire after optimizer step
`step` (from `on_train_batch_end`), and fire at the end of epoch `epoch` (`on_epoch_end`).
Step 0, the untrained model, is every schedule's first firing (the callbacks' `at_start`
turns it off). The callbacks log every firing at the global optimizer step, and never fire
twice at one step: a step-based and an epoch-based firing that coincide give one firing.

Written as strings in configs and arguments:

  "log"          steps 0, 1, 2, 4, 8, ... through the first epoch, then every epoch end
  "epochs:N"     every N-th epoch end
  "steps:N"      every N-th optimizer step
  "at:S1,S2,..." exactly these global steps
  "never"        no firings (the sanity callback's `at_end` still fires once)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable


class Schedule:
    """Fires nowhere; subclasses override the hooks they fire in."""

    def at_start(self) -> bool:
        """Whether step 0, the untrained model, is a firing."""
        return True

    def after_step(self, step: int, epoch: int | None) -> bool:
        """Whether to fire after optimizer step `step` (>= 1), taken during epoch `epoch`
        (counted from 1; None when the loop does not report epochs)."""
        return False

    def at_epoch_end(self, epoch: int) -> bool:
        """Whether to fire at the end of epoch `epoch` (counted from 1)."""
        return False

    def firings(self, num_epochs: int, steps_per_epoch: int) -> list[int]:
        """The global steps a fresh run of `num_epochs` fires at after step 0, in order."""
        steps = []
        for epoch in range(1, num_epochs + 1):
            for step in range((epoch - 1) * steps_per_epoch + 1, epoch * steps_per_epoch + 1):
                if self.after_step(step, epoch) or (
                        step == epoch * steps_per_epoch and self.at_epoch_end(epoch)):
                    steps.append(step)
        return steps


@dataclasses.dataclass(frozen=True)
class Never(Schedule):
    def at_start(self) -> bool:
        return False

    def __str__(self) -> str:
        return "never"


@dataclasses.dataclass(frozen=True)
class EveryNEpochs(Schedule):
    n: int

    def at_epoch_end(self, epoch: int) -> bool:
        return epoch % self.n == 0

    def __str__(self) -> str:
        return f"epochs:{self.n}"


@dataclasses.dataclass(frozen=True)
class EveryNSteps(Schedule):
    n: int

    def after_step(self, step: int, epoch: int | None) -> bool:
        return step % self.n == 0

    def __str__(self) -> str:
        return f"steps:{self.n}"


@dataclasses.dataclass(frozen=True)
class AtSteps(Schedule):
    steps: frozenset[int]

    def at_start(self) -> bool:
        return 0 in self.steps

    def after_step(self, step: int, epoch: int | None) -> bool:
        return step in self.steps

    def __str__(self) -> str:
        return "at:" + ",".join(str(s) for s in sorted(self.steps))


@dataclasses.dataclass(frozen=True)
class LogSpaced(Schedule):
    """Powers of two through the first epoch, where maps change fastest; then every epoch.

    A loop that reports no epochs gets powers of two throughout.
    """

    def after_step(self, step: int, epoch: int | None) -> bool:
        return (epoch is None or epoch == 1) and step & (step - 1) == 0

    def at_epoch_end(self, epoch: int) -> bool:
        return True

    def __str__(self) -> str:
        return "log"


FORMS = ("log", "epochs:N", "steps:N", "at:S1,S2,...", "never")


def parse(spec: str | Schedule | Iterable[int]) -> Schedule:
    """A Schedule from its string form (see the module doc), or a list of global steps.

    Raises:
      ValueError: naming the bad value and the valid forms.
    """
    if isinstance(spec, Schedule):
        return spec
    if not isinstance(spec, str):
        try:
            return AtSteps(frozenset(_steps(list(spec), spec)))
        except TypeError:
            raise ValueError(f"Unknown schedule {spec!r}; valid: {', '.join(FORMS)}, or a "
                             "list of steps.") from None
    kind, sep, value = spec.strip().partition(":")
    kind = kind.strip().lower()
    if not sep and kind in ("log", "never"):
        return LogSpaced() if kind == "log" else Never()
    if sep and kind in ("epochs", "steps"):
        n = _int(value, spec)
        if n < 1:
            raise ValueError(f"Schedule {spec!r}: N must be >= 1 (use 'never' for no firings).")
        return EveryNEpochs(n) if kind == "epochs" else EveryNSteps(n)
    if sep and kind == "at":
        return AtSteps(frozenset(_steps(value.split(","), spec)))
    raise ValueError(f"Unknown schedule {spec!r}; valid: {', '.join(FORMS)}.")


def _int(value, spec) -> int:
    try:
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"Schedule {spec!r}: {value!r} is not an integer.") from None


def _steps(values, spec) -> list[int]:
    steps = [_int(v, spec) for v in values if str(v).strip()]
    if not steps or min(steps) < 0:
        raise ValueError(f"Schedule {spec!r}: give at least one step, each >= 0.")
    return steps
