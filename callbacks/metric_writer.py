"""The metric-writer interface the callbacks write through, and a fan-out writer.

`MetricWriter` is a structural protocol with the method set of CLU's
`clu.metric_writers.MetricWriter`, so a CLU writer (where TensorFlow is installed) can be
passed anywhere ours are expected, and ours never import TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

Array = Any  # numpy or jax array; writers copy it to the host
Scalar = int | float | np.number | np.ndarray


@runtime_checkable
class MetricWriter(Protocol):
    """CLU's `MetricWriter` method set (clu 0.0.12); see its docstrings for the contract."""

    def write_summaries(
        self,
        step: int,
        values: Mapping[str, Array],
        metadata: Mapping[str, Any] | None = None,
    ) -> None: ...

    def write_scalars(self, step: int, scalars: Mapping[str, Scalar]) -> None: ...

    def write_images(self, step: int, images: Mapping[str, Array]) -> None: ...

    def write_videos(self, step: int, videos: Mapping[str, Array]) -> None: ...

    def write_audios(self, step: int, audios: Mapping[str, Array], *, sample_rate: int) -> None:
        ...

    def write_texts(self, step: int, texts: Mapping[str, str]) -> None: ...

    def write_histograms(
        self,
        step: int,
        arrays: Mapping[str, Array],
        num_buckets: Mapping[str, int] | None = None,
    ) -> None: ...

    def write_hparams(self, hparams: Mapping[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class MultiWriter:
    """Forwards every call to each of `writers`, in order."""

    def __init__(self, writers: Iterable[MetricWriter]):
        self._writers = tuple(writers)
        for writer in self._writers:
            if not isinstance(writer, MetricWriter):
                raise TypeError(f"{writer!r} lacks the MetricWriter method set (write_scalars, "
                                "write_images, ..., flush, close).")

    def write_summaries(self, step, values, metadata=None):
        for w in self._writers:
            w.write_summaries(step, values, metadata)

    def write_scalars(self, step, scalars):
        for w in self._writers:
            w.write_scalars(step, scalars)

    def write_images(self, step, images):
        for w in self._writers:
            w.write_images(step, images)

    def write_videos(self, step, videos):
        for w in self._writers:
            w.write_videos(step, videos)

    def write_audios(self, step, audios, *, sample_rate):
        for w in self._writers:
            w.write_audios(step, audios, sample_rate=sample_rate)

    def write_texts(self, step, texts):
        for w in self._writers:
            w.write_texts(step, texts)

    def write_histograms(self, step, arrays, num_buckets=None):
        for w in self._writers:
            w.write_histograms(step, arrays, num_buckets)

    def write_hparams(self, hparams):
        for w in self._writers:
            w.write_hparams(hparams)

    def flush(self):
        for w in self._writers:
            w.flush()

    def close(self):
        for w in self._writers:
            w.close()

    def __enter__(self) -> MultiWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
