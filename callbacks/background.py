"""One background thread for a callback's rendering and writing, so training waits only for
the compute. An error raised there is raised again in the training thread: at the callback's
next firing, or at `wait`."""

import concurrent.futures
from collections.abc import Callable
from typing import Any


class BackgroundJobs:
    """Runs submitted jobs in order on one thread; keeps their futures until they are checked."""

    def __init__(self, name: str):
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pending: list[concurrent.futures.Future] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queues `fn(*args)`."""
        self._pending.append(self._pool.submit(fn, *args))

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
