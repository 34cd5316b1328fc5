"""A metric writer that writes on one background thread, in call order.

The training loop hands each write to a bounded queue and goes on; one thread performs the
writes in the order they were made. A full queue blocks the caller, so a slow disk slows the
loop instead of growing memory without bound. An error raised by a background write is never
lost: it is raised again on the caller's next call, `flush()` or `close()`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from typing import Any

from callbacks.metric_writer import Array, MetricWriter, Scalar

_STOP = object()


class AsyncWriter:
    """Wraps any `MetricWriter`; the same methods, performed on a background thread.

    Mappings are copied when a write is queued, but arrays are not: do not modify an array in
    place after passing it. Writes keep running after a background error; the first error is
    re-raised once (later ones are counted in a note on it), then the writer carries on.
    """

    def __init__(self, writer: MetricWriter, max_queue: int = 16):
        """Starts the background thread.

        Args:
          writer: the writer that does the writing, e.g. a `TensorBoardWriter`.
          max_queue: writes that may wait in the queue before a caller blocks (>= 1).
        """
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise ValueError(f"max_queue must be an int >= 1; got {max_queue!r}.")
        self._writer = writer
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._later_errors = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="AsyncWriter", daemon=True)
        self._thread.start()

    def write_summaries(self, step: int, values: Mapping[str, Array],
                        metadata: Mapping[str, Any] | None = None) -> None:
        self._submit("write_summaries", step, dict(values),
                     None if metadata is None else dict(metadata))

    def write_scalars(self, step: int, scalars: Mapping[str, Scalar]) -> None:
        self._submit("write_scalars", step, dict(scalars))

    def write_images(self, step: int, images: Mapping[str, Array]) -> None:
        self._submit("write_images", step, dict(images))

    def write_videos(self, step: int, videos: Mapping[str, Array]) -> None:
        self._submit("write_videos", step, dict(videos))

    def write_audios(self, step: int, audios: Mapping[str, Array], *, sample_rate: int) -> None:
        self._submit("write_audios", step, dict(audios), sample_rate=sample_rate)

    def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
        self._submit("write_texts", step, dict(texts))

    def write_histograms(self, step: int, arrays: Mapping[str, Array],
                         num_buckets: Mapping[str, int] | None = None) -> None:
        self._submit("write_histograms", step, dict(arrays),
                     None if num_buckets is None else dict(num_buckets))

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        self._submit("write_hparams", dict(hparams))

    def flush(self) -> None:
        """Waits for every queued write, flushes the wrapped writer, raises any pending error."""
        self._submit("flush", check=False)
        self._queue.join()
        self._raise_pending()

    def close(self) -> None:
        """Finishes every queued write, closes the wrapped writer, stops the thread.

        Raises any pending background error after everything else is done. A second call does
        nothing.
        """
        if self._closed:
            return
        self._submit("close", check=False)
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        self._raise_pending()

    def __enter__(self) -> AsyncWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _submit(self, method: str, *args: Any, check: bool = True, **kwargs: Any) -> None:
        if self._closed:
            raise RuntimeError(f"AsyncWriter.{method} called after close().")
        if check:
            self._raise_pending()
        self._queue.put((method, args, kwargs))

    def _raise_pending(self) -> None:
        with self._lock:
            error, later = self._error, self._later_errors
            self._error, self._later_errors = None, 0
        if error is not None:
            if later:
                error.add_note(f"AsyncWriter: {later} later background write(s) also failed.")
            raise error

    def _run(self) -> None:
        while True:
            task = self._queue.get()
            try:
                if task is _STOP:
                    return
                method, args, kwargs = task
                getattr(self._writer, method)(*args, **kwargs)
            except BaseException as error:  # handed to the caller's thread, never lost
                error.add_note(f"Raised in AsyncWriter's background thread by {method}().")
                with self._lock:
                    if self._error is None:
                        self._error = error
                    else:
                        self._later_errors += 1
            finally:
                self._queue.task_done()
