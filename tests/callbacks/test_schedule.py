"""Schedules fire at exactly the documented global steps, once each, in order."""

import pytest

from callbacks import schedule
from callbacks.scheduled import ScheduledCallback


class Recorder(ScheduledCallback):
    """The real hook bookkeeping; a firing records its step."""

    def __init__(self, spec, at_start=True):
        super().__init__(spec, at_start)
        self.fired = []

    def fire(self, step, state):
        self.fired.append(step)


class State:
    def __init__(self, step):
        self.step = step


def own_loop(callback, epochs, steps_per_epoch, start_epoch=0, batch_hook=True,
             set_params=False):
    """A plain loop calling the hooks in the documented order."""
    if set_params:
        callback.set_params({"epochs": epochs, "steps": steps_per_epoch})
    step = start_epoch * steps_per_epoch
    callback.on_train_begin(State(step))
    for epoch in range(start_epoch + 1, epochs + 1):
        callback.on_epoch_begin(epoch, State(step))
        for _ in range(steps_per_epoch):
            step += 1
            if batch_hook:
                callback.on_train_batch_end(step, State(step))
        callback.on_epoch_end(epoch, State(step))
    callback.on_train_end(State(step))
    return callback.fired


@pytest.mark.parametrize("spec, expected", [
    # 3 epochs of 20 steps: epoch ends at global steps 20, 40, 60.
    ("log", [0, 1, 2, 4, 8, 16, 20, 40, 60]),
    ("epochs:1", [0, 20, 40, 60]),
    ("epochs:2", [0, 40]),
    ("steps:25", [0, 25, 50]),
    ("steps:20", [0, 20, 40, 60]),  # step and epoch end coincide: once
    ("at:3,50,7", [3, 7, 50]),
    ("at:0,60,99", [0, 60]),
    ([5, 0], [0, 5]),
    ("never", []),
])
def test_fires_at_the_documented_steps(spec, expected):
    assert own_loop(Recorder(spec), epochs=3, steps_per_epoch=20) == expected
    parsed = schedule.parse(spec)
    assert [s for s in expected if s] == parsed.firings(3, 20)
    assert schedule.parse(str(parsed)) == parsed  # The string form round-trips.


def test_log_schedule_with_a_power_of_two_epoch_fires_once_there():
    assert own_loop(Recorder("log"), epochs=2, steps_per_epoch=16) == [0, 1, 2, 4, 8, 16, 32]


def test_at_start_off_skips_step_0():
    assert own_loop(Recorder("epochs:1", at_start=False), 2, 5) == [5, 10]


def test_resumed_loop_fires_only_after_the_resume_step():
    # Resuming after epoch 1 of 20 steps: no step 0, no repeated step 20, the log schedule's
    # powers of two belong to the first epoch only.
    assert own_loop(Recorder("log"), epochs=3, steps_per_epoch=20, start_epoch=1) == [40, 60]
    assert own_loop(Recorder("steps:15"), epochs=3, steps_per_epoch=20,
                    start_epoch=1) == [30, 45, 60]


def test_loop_without_batch_hooks_fires_at_the_state_step_else_the_epoch():
    assert own_loop(Recorder("epochs:1"), 3, 20, batch_hook=False) == [0, 20, 40, 60]
    callback = Recorder("epochs:1")  # A variables dict has no step: the epoch stands in.
    callback.on_train_begin({"params": {}})
    for epoch in (1, 2, 3):
        callback.on_epoch_end(epoch, {"params": {}})
    assert callback.fired == [0, 1, 2, 3]


def test_steps_per_epoch_learned_or_given():
    callback = Recorder("log")
    callback.on_train_begin(State(0))
    callback.on_epoch_begin(1, State(0))
    for step in range(1, 11):
        callback.on_train_batch_end(step, State(step))
    assert callback.epoch_of(4) is None  # Unknown until the first epoch ends...
    callback.on_epoch_end(1, State(10))
    assert callback.epoch_of(4) == pytest.approx(0.4)
    given = Recorder("log")
    given.set_params({"epochs": 3, "steps": 8})  # ...or from the loop, as Keras gives it.
    assert given.epoch_of(4) == pytest.approx(0.5)


def test_wants_step_matches_the_firings():
    callback = Recorder("steps:4")
    callback.on_train_begin(State(0))
    assert [s for s in range(1, 13) if callback.wants_step(s)] == [4, 8, 12]


@pytest.mark.parametrize("spec, message", [
    ("weekly", "valid: log, epochs:N, steps:N"),
    ("epochs:0", "N must be >= 1"),
    ("steps:x", "'x' is not an integer"),
    ("at:", "at least one step"),
    ("at:-3", "each >= 0"),
    ([1.5], "1.5 is not an integer"),
    (7, "Unknown schedule 7"),
])
def test_bad_schedules_name_the_value_and_the_valid_forms(spec, message):
    with pytest.raises(ValueError, match=message):
        schedule.parse(spec)
