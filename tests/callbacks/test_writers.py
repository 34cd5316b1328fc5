"""Metric writers: what TensorBoardWriter writes reads back through TensorBoard's own reader;
AsyncWriter keeps order, drains on flush/close, and never loses a background error."""

import io
import itertools
import os
import threading
import wave

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from callbacks.async_writer import AsyncWriter
from callbacks.metric_writer import MetricWriter, MultiWriter
from callbacks.tensorboard_writer import DEFAULT_HISTOGRAM_BUCKETS, TensorBoardWriter


def _load(logdir) -> ea.EventAccumulator:
    kinds = (ea.SCALARS, ea.IMAGES, ea.AUDIO, ea.HISTOGRAMS, ea.TENSORS,
             ea.COMPRESSED_HISTOGRAMS)
    acc = ea.EventAccumulator(str(logdir), size_guidance={kind: 0 for kind in kinds})
    acc.Reload()
    return acc


def _decode_png(event) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))


def test_scalars_read_back(tmp_path):
    with TensorBoardWriter(tmp_path) as writer:
        for step in range(3):
            writer.write_scalars(step, {"loss": 1.0 / (step + 1), "acc": np.float32(step / 4)})
    acc = _load(tmp_path)
    assert set(acc.Tags()["scalars"]) == {"loss", "acc"}
    loss = acc.Scalars("loss")
    assert [e.step for e in loss] == [0, 1, 2]
    np.testing.assert_allclose([e.value for e in loss], [1.0, 0.5, 1.0 / 3], rtol=1e-6)
    np.testing.assert_allclose([e.value for e in acc.Scalars("acc")], [0.0, 0.25, 0.5])


def test_images_read_back_as_png_of_the_right_size(tmp_path):
    batch = np.zeros((2, 5, 7, 1), np.uint8)
    batch[1, 2, 3, 0] = 200
    single = np.zeros((4, 6, 3), np.float32)
    single[0, 0] = [1.0, 0.5, 0.0]
    with TensorBoardWriter(tmp_path) as writer:
        writer.write_images(10, {"batch": batch, "single": single})
    acc = _load(tmp_path)
    assert set(acc.Tags()["images"]) == {"batch/0", "batch/1", "single"}
    first, second = acc.Images("batch/0")[0], acc.Images("batch/1")[0]
    assert first.step == 10 and (first.height, first.width) == (5, 7)
    np.testing.assert_array_equal(_decode_png(second), batch[1, ..., 0])
    decoded = _decode_png(acc.Images("single")[0])
    assert decoded.shape == (4, 6, 3)
    np.testing.assert_array_equal(decoded[0, 0], [255, 128, 0])


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_images_decode_to_their_exact_pixels(channels, tmp_path):
    """Grey, RGB and RGBA, noise (no two rows alike) below flat rows (a grid's margins)."""
    image = np.random.default_rng(channels).integers(0, 256, (37, 53, channels), np.uint8)
    image[:9] = 255
    with TensorBoardWriter(tmp_path) as writer:
        writer.write_images(3, {"x": image})
    event = _load(tmp_path).Images("x")[0]
    assert (event.height, event.width) == (37, 53)
    np.testing.assert_array_equal(_decode_png(event).reshape(image.shape), image)


def test_bad_images_are_rejected(tmp_path):
    with TensorBoardWriter(tmp_path) as writer:
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            writer.write_images(0, {"x": np.full((2, 2, 3), 2.0)})
        with pytest.raises(ValueError, match="C in"):
            writer.write_images(0, {"x": np.zeros((2, 2, 2), np.uint8)})


def test_texts_histograms_audio_and_raw_summaries_read_back(tmp_path):
    values = np.arange(100, dtype=np.float32)
    clip = np.stack([np.linspace(-1, 1, 8), np.zeros(8)], axis=-1)[None]  # [1, 8, 2]
    with TensorBoardWriter(tmp_path) as writer:
        writer.write_texts(3, {"notes": "**hello** world"})
        writer.write_histograms(3, {"h": values, "h4": values}, num_buckets={"h4": 4})
        writer.write_audios(3, {"sound": clip}, sample_rate=8000)
        writer.write_summaries(3, {"raw": np.eye(2, dtype=np.float32)})
    acc = _load(tmp_path)
    text = acc.Tensors("notes")[0]
    assert text.step == 3
    assert tensor_util.make_ndarray(text.tensor_proto).item() == b"**hello** world"
    assert acc.summary_metadata["notes"].plugin_data.plugin_name == "text"

    histo = acc.Histograms("h")[0].histogram_value
    assert (histo.min, histo.max, histo.num, histo.sum) == (0.0, 99.0, 100, 4950.0)
    assert histo.sum_squares == float(values.astype(np.float64) @ values)
    assert len(histo.bucket) == DEFAULT_HISTOGRAM_BUCKETS and sum(histo.bucket) == 100
    assert list(acc.Histograms("h4")[0].histogram_value.bucket) == [25, 25, 25, 25]

    audio = acc.Audio("sound/0")[0]
    assert audio.sample_rate == 8000 and audio.length_frames == 8
    with wave.open(io.BytesIO(audio.encoded_audio_string)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (2, 8000, 8)
        pcm = np.frombuffer(wav.readframes(8), "<i2").reshape(8, 2)
    np.testing.assert_array_equal(pcm[[0, -1], 0], [-32767, 32767])

    np.testing.assert_array_equal(tensor_util.make_ndarray(acc.Tensors("raw")[0].tensor_proto),
                                  np.eye(2))


def test_hparams_are_readable_in_the_same_run(tmp_path):
    with TensorBoardWriter(tmp_path) as writer:
        writer.write_hparams({"lr": 1e-3, "model": "cnn", "optim": {"name": "adam", "b1": 0.9},
                              "steps": np.int64(10), "shape": (28, 28), "ok": True})
        writer.write_scalars(1, {"eval_accuracy": 0.9})
    acc = _load(tmp_path)
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["lr"].number_value == 1e-3
    assert hparams["model"].string_value == "cnn"
    assert hparams["optim.name"].string_value == "adam"
    assert hparams["optim.b1"].number_value == 0.9
    assert hparams["steps"].number_value == 10
    assert hparams["shape"].string_value == "(28, 28)"
    assert hparams["ok"].bool_value is True
    assert "eval_accuracy" in acc.Tags()["scalars"]


def test_two_writers_in_one_run_keep_separate_files(tmp_path):
    with TensorBoardWriter(tmp_path) as first, TensorBoardWriter(tmp_path) as second:
        first.write_scalars(1, {"a": 1.0})
        second.write_scalars(1, {"b": 2.0})
        first.flush()  # flush alone makes events readable
        second.flush()
        assert set(_load(tmp_path).Tags()["scalars"]) == {"a", "b"}
    with pytest.raises(RuntimeError, match="closed"):
        first.write_scalars(2, {"a": 0.0})


def test_videos_are_not_supported(tmp_path):
    with TensorBoardWriter(tmp_path) as writer, pytest.raises(NotImplementedError):
        writer.write_videos(0, {"v": np.zeros((1, 2, 4, 4, 3))})


def test_multi_writer_fans_out(tmp_path):
    a, b = TensorBoardWriter(tmp_path / "a"), TensorBoardWriter(tmp_path / "b")
    assert isinstance(a, MetricWriter)
    with MultiWriter([a, b]) as writer:
        writer.write_scalars(5, {"x": 2.0})
    for run in ("a", "b"):
        assert [(e.step, e.value) for e in _load(tmp_path / run).Scalars("x")] == [(5, 2.0)]
    with pytest.raises(TypeError, match="MetricWriter"):
        MultiWriter([object()])


class RecordingWriter(TensorBoardWriter):
    """A real TensorBoard writer that also records, in order, the calls it performed."""

    def __init__(self, logdir, fail_on_step=None, gate=None):
        super().__init__(logdir)
        self.calls = []
        self.fail_on_step = fail_on_step
        self.gate = gate  # a threading.Event each write waits on, to hold the thread
        self.texts_done = threading.Event()

    def write_scalars(self, step, scalars):
        if self.gate is not None:
            self.gate.wait()
        if step == self.fail_on_step:
            raise OSError(f"disk full at step {step}")
        super().write_scalars(step, scalars)
        self.calls.append(("scalars", step))

    def write_texts(self, step, texts):
        super().write_texts(step, texts)
        self.calls.append(("texts", step))
        self.texts_done.set()

    def flush(self):
        super().flush()
        self.calls.append(("flush",))

    def close(self):
        super().close()
        self.calls.append(("close",))


def test_async_writer_keeps_order_and_values(tmp_path):
    inner = RecordingWriter(tmp_path)
    writer = AsyncWriter(inner, max_queue=4)
    for step in range(40):
        writer.write_scalars(step, {"x": float(step) ** 2})
        if step % 10 == 0:
            writer.write_texts(step, {"t": f"step {step}"})
    writer.flush()
    expected = []
    for step in range(40):
        expected.append(("scalars", step))
        if step % 10 == 0:
            expected.append(("texts", step))
    assert inner.calls == expected + [("flush",)]  # flush drained everything first
    scalars = _load(tmp_path).Scalars("x")
    assert [(e.step, e.value) for e in scalars] == [(s, float(s) ** 2) for s in range(40)]
    writer.close()
    assert inner.calls[-1] == ("close",)
    with pytest.raises(RuntimeError, match="after close"):
        writer.write_scalars(99, {"x": 0.0})


def test_async_writer_raises_background_error_on_next_call(tmp_path):
    gate = threading.Event()
    inner = RecordingWriter(tmp_path, fail_on_step=1, gate=gate)
    writer = AsyncWriter(inner)
    writer.write_scalars(1, {"x": 1.0})  # held at the gate, so no error exists yet
    writer.write_texts(2, {"t": "after"})
    gate.set()
    assert inner.texts_done.wait(10)  # the failed write has been handled by now
    with pytest.raises(OSError, match="disk full at step 1") as info:
        writer.write_scalars(3, {"x": 3.0})
    assert any("background thread" in note for note in info.value.__notes__)
    writer.write_scalars(4, {"x": 4.0})  # the error was reported once; writing goes on
    writer.close()
    acc = _load(tmp_path)
    assert [e.step for e in acc.Scalars("x")] == [4]  # step 3 was refused, not queued
    assert [e.step for e in acc.Tensors("t")] == [2]


def test_async_writer_flush_and_close_surface_errors(tmp_path):
    inner = RecordingWriter(tmp_path, fail_on_step=0)
    writer = AsyncWriter(inner)
    writer.write_scalars(0, {"x": 0.0})
    writer.write_scalars(1, {"x": 1.0})
    with pytest.raises(OSError, match="step 0"):
        writer.flush()
    assert inner.calls == [("scalars", 1), ("flush",)]  # later writes still happened
    writer.write_scalars(0, {"x": 0.0})
    with pytest.raises(OSError, match="step 0"):
        writer.close()
    assert inner.calls[-1] == ("close",)  # closed despite the error
    writer.close()  # a second close does nothing


def test_async_writer_queue_is_bounded(tmp_path):
    gate = threading.Event()
    writer = AsyncWriter(RecordingWriter(tmp_path, gate=gate), max_queue=1)
    writer.write_scalars(0, {"x": 0.0})  # taken by the thread, which waits at the gate
    writer.write_scalars(1, {"x": 1.0})  # fills the queue (or is taken if the thread is slow)
    third = threading.Thread(target=writer.write_scalars, args=(2, {"x": 2.0}))
    fourth = threading.Thread(target=writer.write_scalars, args=(3, {"x": 3.0}))
    third.start()
    fourth.start()
    third.join(0.2)
    fourth.join(0.01)
    assert third.is_alive() or fourth.is_alive()  # at least one caller is held back
    gate.set()
    third.join(10)
    fourth.join(10)
    writer.close()
    assert sorted(e.step for e in _load(tmp_path).Scalars("x")) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="max_queue"):
        AsyncWriter(RecordingWriter(tmp_path), max_queue=0)


def test_native_checksums_read_the_same_records_and_still_catch_damage(tmp_path):
    import crc32c
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.compat.tensorflow_stub import pywrap_tensorflow as stub

    from callbacks import event_files

    def pure(data):  # The stub's own pure-Python CRC-32C.
        return stub.crc_finalize(stub.crc_update(stub.CRC_INIT, data))

    assert pure(b"123456789") == crc32c.crc32c(b"123456789") == 0xE3069283  # The check value.
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    with TensorBoardWriter(tmp_path) as writer:
        writer.write_images(1, {"grid": image})
        writer.write_scalars(2, {"loss": 0.5})
    (path,) = tmp_path.glob("events.out.tfevents.*")

    def records(checksum):
        stub.crc32c = checksum
        try:
            return [(e.step, [v.tag for v in e.summary.value])
                    for e in event_file_loader.EventFileLoader(str(path)).Load()]
        finally:
            event_files.use_native_checksums()

    event_files.use_native_checksums()
    assert stub.crc32c is crc32c.crc32c  # What the project's readers and the tests use.
    assert records(crc32c.crc32c) == records(pure)
    assert (1, ["grid"]) in records(crc32c.crc32c) and (2, ["loss"]) in records(pure)
    data = bytearray(path.read_bytes())
    data[data.index(b"IDAT") + 40] ^= 0xFF  # Eight bits inside the image's record.
    path.write_bytes(bytes(data))
    # The loader stops at the damaged record, with either checksum: nothing from it on.
    damaged = records(crc32c.crc32c)
    assert damaged == records(pure) and damaged and all(step < 1 for step, _ in damaged)


def test_event_files_sort_in_the_order_they_were_opened(tmp_path, monkeypatch):
    """Readers take a run's files in name order: a resumed run's purge must follow the files
    it purges, however many writers the process opened before (here the 6th to the 17th)."""
    from callbacks import tensorboard_writer
    monkeypatch.setattr(tensorboard_writer, "_FILE_IDS", itertools.count(5))
    opened = []
    for _ in range(12):
        before = set(os.listdir(tmp_path))
        TensorBoardWriter(tmp_path).close()
        (name,) = set(os.listdir(tmp_path)) - before
        opened.append(name)
    assert sorted(opened) == opened
