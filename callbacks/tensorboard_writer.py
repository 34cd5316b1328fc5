"""A TensorBoard metric writer without TensorFlow, on tensorboardX's event-file writer.

Summaries are built as TensorBoard protos on the host (tensorboard's own helpers for text,
hparams and tensors) and appended to one run's event file, so TensorBoard's scalar, image,
audio, text, histogram and hparams dashboards all read them.

Writes are synchronous: tensorboardX's `SummaryWriter` queues events to a thread of its own
whose `flush()` does not wait for that queue, so a flushed run could still miss its last
events. We write through its synchronous `EventsWriter` instead; wrap this writer in
`AsyncWriter` to take the writing off the training loop.
"""

from __future__ import annotations

import io
import itertools
import os
import struct
import time
import wave
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.plugins.text import summary_v2 as text_summary
from tensorboard.util import tensor_util
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto import event_pb2
from tensorboardX.proto import summary_pb2 as tbx_summary_pb2

from callbacks.metric_writer import Array, Scalar

DEFAULT_HISTOGRAM_BUCKETS = 30  # tf.summary.histogram's default
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # PNG colour types of grey, RGB and RGBA images
# Two writers opened in the same second get distinct files, named in the order they were
# opened: readers take a run's files in name order, and a resumed run's purge (see
# `purge_step`) must come after the files it purges (zero-padded: "10" sorts before "9").
_FILE_IDS = itertools.count()


class TensorBoardWriter:
    """Writes CLU-style metrics to TensorBoard event files in `logdir` (one run).

    Method signatures follow CLU's `MetricWriter`. Values may be numpy or jax arrays; each is
    copied to the host with `np.asarray`.
    """

    def __init__(self, logdir: str | os.PathLike, purge_step: int | None = None):
        """Opens (creating if needed) the run directory `logdir` and a new event file in it.

        Args:
          logdir: the run's directory.
          purge_step: for a run resumed after a crash: TensorBoard hides the events at this
            step and later that earlier event files hold (the steps run again), so no step
            shows twice.
        """
        self.logdir = os.fspath(logdir)
        os.makedirs(self.logdir, exist_ok=True)
        self._events = EventsWriter(os.path.join(self.logdir, "events"),
                                    f".{os.getpid()}.{next(_FILE_IDS):06d}")
        self._closed = False
        if purge_step is not None:
            # TensorBoard drops earlier events at steps >= a session START's step.
            self._events.write_event(event_pb2.Event(
                wall_time=time.time(), step=int(purge_step),
                session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))

    def write_summaries(
        self,
        step: int,
        values: Mapping[str, Array],
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Writes raw tensor summaries; metadata values are SummaryMetadata protos or bytes."""
        summary = summary_pb2.Summary()
        for tag, value in values.items():
            entry = summary.value.add(tag=tag)
            entry.tensor.CopyFrom(tensor_util.make_tensor_proto(np.asarray(value)))
            md = None if metadata is None else metadata.get(tag)
            if md is not None:
                raw = md if isinstance(md, bytes) else md.SerializeToString()
                entry.metadata.CopyFrom(summary_pb2.SummaryMetadata.FromString(raw))
        self._emit(summary, step)

    def write_scalars(self, step: int, scalars: Mapping[str, Scalar]) -> None:
        summary = summary_pb2.Summary()
        for tag, value in scalars.items():
            array = np.asarray(value)
            if array.size != 1:
                raise ValueError(f"Scalar {tag!r} must hold one value; got shape {array.shape}.")
            summary.value.add(tag=tag, simple_value=float(array.reshape(())))
        self._emit(summary, step)

    def write_images(self, step: int, images: Mapping[str, Array]) -> None:
        """Writes PNG images: `[H, W, C]` under `tag`, `[N, H, W, C]` under `tag/0` .. `tag/N-1`.

        C is 1 (grey), 3 (RGB) or 4 (RGBA); values are uint8, or floats in [0, 1].
        """
        summary = summary_pb2.Summary()
        for tag, value in images.items():
            array = _image_uint8(tag, np.asarray(value))
            if array.ndim == 3:
                summary.value.add(tag=tag, image=_png(array))
            else:
                for i, image in enumerate(array):
                    summary.value.add(tag=f"{tag}/{i}", image=_png(image))
        self._emit(summary, step)

    def write_videos(self, step: int, videos: Mapping[str, Array]) -> None:
        raise NotImplementedError("TensorBoardWriter does not write videos (CLU's TensorFlow "
                                  "SummaryWriter does not either).")

    def write_audios(self, step: int, audios: Mapping[str, Array], *, sample_rate: int) -> None:
        """Writes 16-bit WAV clips: each `[N, T, C]` array (floats in [-1, 1]) as `tag/0` ..."""
        summary = summary_pb2.Summary()
        for tag, value in audios.items():
            array = np.asarray(value, dtype=np.float32)
            if array.ndim != 3:
                raise ValueError(f"Audio {tag!r} must have shape [N, T, C]; got {array.shape}.")
            for i, clip in enumerate(array):
                audio = summary_pb2.Summary.Audio(
                    sample_rate=sample_rate, num_channels=clip.shape[1],
                    length_frames=clip.shape[0], encoded_audio_string=_wav(clip, sample_rate),
                    content_type="audio/wav")
                summary.value.add(tag=f"{tag}/{i}", audio=audio)
        self._emit(summary, step)

    def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
        """Writes text (rendered as markdown by TensorBoard) under each tag."""
        summary = summary_pb2.Summary()
        for tag, text in texts.items():
            summary.MergeFrom(text_summary.text_pb(tag, str(text)))
        self._emit(summary, step)

    def write_histograms(
        self,
        step: int,
        arrays: Mapping[str, Array],
        num_buckets: Mapping[str, int] | None = None,
    ) -> None:
        """Writes equal-width histograms (`DEFAULT_HISTOGRAM_BUCKETS` unless `num_buckets[tag]`)."""
        summary = summary_pb2.Summary()
        for tag, value in arrays.items():
            values = np.asarray(value, dtype=np.float64).reshape(-1)
            if values.size == 0 or not np.all(np.isfinite(values)):
                raise ValueError(f"Histogram {tag!r} needs a non-empty, finite array.")
            buckets = (num_buckets or {}).get(tag, DEFAULT_HISTOGRAM_BUCKETS)
            counts, edges = np.histogram(values, bins=buckets)
            # Old-style histograms store right edges; TensorBoard takes `min` as the first left.
            histo = summary_pb2.HistogramProto(
                min=values.min(), max=values.max(), num=values.size, sum=values.sum(),
                sum_squares=values @ values, bucket_limit=edges[1:].tolist(),
                bucket=counts.tolist())
            summary.value.add(tag=tag, histo=histo)
        self._emit(summary, step)

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        """Records hyperparameters for this run in TensorBoard's HParams dashboard.

        Nested mappings are flattened with "." like CLU does; values other than bool, int,
        float and str are written as their `str()`. The run's scalars become its metrics.
        """
        flat = {key: _hparam_value(value) for key, value in _flatten(hparams).items()}
        self._emit(hparams_summary.hparams_pb(flat), 0)

    def flush(self) -> None:
        """Writes every event so far to disk."""
        if not self._closed:
            self._events.flush()

    def close(self) -> None:
        """Flushes and closes the event file; a second call does nothing."""
        if not self._closed:
            self._closed = True
            self._events.close()

    def __enter__(self) -> TensorBoardWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _emit(self, summary: summary_pb2.Summary, step: int) -> None:
        # tensorboardX's event writer wants its own (wire-identical) Summary class.
        if self._closed:
            raise RuntimeError(f"TensorBoardWriter for {self.logdir!r} was closed.")
        converted = tbx_summary_pb2.Summary.FromString(summary.SerializeToString())
        self._events.write_event(event_pb2.Event(wall_time=time.time(), step=int(step),
                                                 summary=converted))


def _image_uint8(tag: str, array: np.ndarray) -> np.ndarray:
    if array.ndim not in (3, 4) or array.shape[-1] not in _PNG_COLOUR_TYPES:
        raise ValueError(f"Image {tag!r} must have shape [N, H, W, C] or [H, W, C] with C in "
                         f"(1, 3, 4); got {array.shape}.")
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    array = array.astype(np.float32)
    if array.size and not (np.all(np.isfinite(array)) and array.min() >= 0.0
                           and array.max() <= 1.0):
        raise ValueError(f"Image {tag!r}: non-uint8 images must lie in [0, 1]; got "
                         f"[{np.nanmin(array):g}, {np.nanmax(array):g}].")
    return np.rint(array * 255.0).astype(np.uint8)


def _png(image: np.ndarray) -> summary_pb2.Summary.Image:
    """A PNG of a uint8 `[H, W, C]` image, every row unfiltered, deflated at zlib level 1.

    Pillow filters each row adaptively (it tries several PNG filters per row): at the same zlib
    level, on the callbacks' grids (maps on white, labels, colour bars), it took 2.7-3.5x the
    time of this encoding, for files 0.95-1.9x the size (README, Tests).
    """
    height, width, channels = image.shape
    rows = np.zeros((height, 1 + width * channels), np.uint8)  # Column 0: filter type 0, none.
    rows[:, 1:] = image.reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    encoded = b"".join((_PNG_SIGNATURE, _png_chunk(b"IHDR", header),
                        _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)),
                        _png_chunk(b"IEND", b"")))
    return summary_pb2.Summary.Image(height=height, width=width, colorspace=channels,
                                     encoded_image_string=encoded)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _wav(clip: np.ndarray, sample_rate: int) -> bytes:
    pcm = np.rint(np.clip(clip, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(clip.shape[1])
        out.setsampwidth(2)
        out.setframerate(int(sample_rate))
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _hparam_value(value: Any) -> bool | int | float | str:
    if isinstance(value, np.generic | np.ndarray) and np.ndim(value) == 0:
        value = value.item()
    return value if isinstance(value, bool | int | float | str) else str(value)
