"""One background thread for a callback's rendering and writing, so training waits only for
the compute. An error raised there is raised again in the training thread: at the callback's
next firing, or at `wait`."""

import concurrent.futures
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

NICENESS = 10  # How much lower the rendering thread's scheduling priority is than training's.


def _lower_priority() -> None:
    """Lets the training threads go first: rendering fills the gaps between their steps.

    Linux schedules threads one by one, so this affects only the calling thread; elsewhere
    it would lower the whole process, so it does nothing there.
    """
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
        except OSError:
            pass  # Not permitted (some containers): run at normal priority.


class BackgroundJobs:
    """Runs submitted jobs in order on one thread; keeps their futures until they are checked."""

    def __init__(self, name: str):
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name,
                                                           initializer=_lower_priority)
        self._pending: list[concurrent.futures.Future] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        """Queues `fn(*args)`; returns its future."""
        self._pending.append(self._pool.submit(fn, *args))
        return self._pending[-1]

    def raise_errors(self) -> None:
        """Re-raises the error of a finished job, if any; does not wait for the others."""
        for future in [f for f in self._pending if f.done()]:
            self._pending.remove(future)
            future.result()

    def wait(self) -> None:
        """Blocks until every queued job is done; re-raises the first error."""
        for future in self._pending:
            future.result()
        self._pending.clear()
