"""One run per workdir at a time: an exclusive lock the operating system drops with the process.

A lock file alone would outlive a killed run; `fcntl.flock` on it is released by the kernel when
the holding process ends, however it ends, so a killed run never leaves the workdir locked.
"""

import fcntl
import os

LOCK_FILE = ".lock"


class WorkdirInUse(RuntimeError):
    """Another live process is training in this workdir."""


class WorkdirLock:
    """Holds the workdir's lock until `release` (or the process ends)."""

    def __init__(self, workdir: str):
        path = os.path.join(workdir, LOCK_FILE)
        self._file = open(path, "a+")  # noqa: SIM115  (held open: the lock lives with it)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "unknown"
            self._file.close()
            raise WorkdirInUse(
                f"Workdir {workdir!r} is in use by another run (process {holder}); wait for "
                "it to finish or stop it, or use another --workdir.") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
