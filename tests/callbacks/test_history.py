"""The attribution history: maps kept to float16 precision, truncation, colour scales."""

import glob
import io
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator

from callbacks import AttributionCallback, TensorBoardWriter, grids, load_history
from callbacks.history import HistoryWriter

SHAPE = (3, 28, 28, 1)


def _writer(folder, methods=("gradient", "grad_cam")):
    images = np.random.default_rng(0).uniform(size=SHAPE).astype(np.float32)
    return HistoryWriter(folder, images, np.arange(3), list(methods),
                         {"gradient": True, "grad_cam": False}, {"scale": "per_map"})


def _append(writer, step, maps):
    writer.append(step, step / 8, maps, np.arange(3), np.arange(3) + 1, np.full(3, 0.5),
                  {m: {"to_previous": 0.25, "to_first": 0.5} for m in maps} if step else None)


def test_maps_round_trip_to_float16_precision_of_each_maps_maximum(tmp_path):
    rng = np.random.default_rng(1)
    writer = _writer(tmp_path)
    stored = []
    for step, magnitude in ((0, 1e-7), (1, 3e-3), (2, 4e2)):
        maps = {"gradient": (magnitude * rng.normal(size=SHAPE)).astype(np.float32),
                "grad_cam": np.abs(rng.normal(size=SHAPE)).astype(np.float32)}
        maps["grad_cam"][1] = 0.0  # An all-zero map stays all zero.
        _append(writer, step, maps)
        stored.append(maps)
    history = load_history(tmp_path)
    assert history.steps.tolist() == [0, 1, 2]
    np.testing.assert_allclose(history.epochs, [0, 0.125, 0.25])
    assert history.methods == ["gradient", "grad_cam"]
    assert history.settings == {"scale": "per_map"}
    for k, maps in enumerate(stored):
        for name, m in maps.items():
            peak = np.abs(m).reshape(3, -1).max(axis=1)[:, None, None, None]
            assert np.all(np.abs(history.maps[name][k] - m) <= 2 ** -11 * peak + 1e-30), name
    assert not history.maps["grad_cam"][:, 1].any()
    np.testing.assert_array_equal(history.predicted, np.tile(np.arange(3) + 1, (3, 1)))
    assert np.isnan(history.drift["gradient"]["to_previous"][0])
    assert history.drift["grad_cam"]["to_first"][1:].tolist() == [0.5, 0.5]


def test_truncate_drops_later_firings_and_a_firing_cut_short(tmp_path):
    writer = _writer(tmp_path)
    maps = {m: np.ones(SHAPE, np.float32) for m in ("gradient", "grad_cam")}
    for step in (0, 1, 2, 4):
        _append(writer, step, maps)
    # A kill in the middle of the next firing: one map file has its record, no line yet.
    with open(tmp_path / "gradient.maps", "ab") as f:
        f.write(b"\0" * 100)
    assert load_history(tmp_path).steps.tolist() == [0, 1, 2, 4]
    kept = _writer(tmp_path).truncate(2)  # Resumed from step 2: 4 is trained again.
    assert kept.steps.tolist() == [0, 1, 2]
    _append(writer, 3, maps)
    history = load_history(tmp_path)
    assert history.steps.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(history.maps["gradient"][3], 1.0)
    size = os.path.getsize(tmp_path / "gradient.maps")
    assert size == os.path.getsize(tmp_path / "grad_cam.maps") == 4 * (4 * 3 + 2 * 3 * 784)


def test_another_runs_history_is_refused_with_both_method_lists(tmp_path):
    _writer(tmp_path)
    with pytest.raises(ValueError, match=r"\['gradient', 'grad_cam'\].*\['gradient'\]"):
        _writer(tmp_path, methods=("gradient",))
    with pytest.raises(FileNotFoundError, match="No attribution history"):
        load_history(tmp_path / "elsewhere")


def test_per_method_scale_is_the_running_maximum():
    clips = np.array([[1.0, 4.0], [3.0, 2.0], [2.0, 5.0]])
    np.testing.assert_array_equal(grids.firing_scales(clips, "per_method"),
                                  [[1, 4], [3, 4], [3, 5]])
    np.testing.assert_array_equal(grids.firing_scales(clips, "per_map"), clips)
    constant = np.full((5, 2), 0.7, np.float32)  # A constant map: its scale never changes.
    np.testing.assert_array_equal(grids.firing_scales(constant, "per_method"), constant)
    with pytest.raises(ValueError, match="per_method, per_map"):
        grids.check_scale("global")


def linear_model(variables, images):
    """A plain function: logits = flattened pixels @ w; its input gradient is w's column."""
    return images.reshape(len(images), -1) @ variables["w"]


def _images(logdir, tag):
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={"images": 0})
    acc.Reload()
    return {e.step: np.asarray(Image.open(io.BytesIO(e.encoded_image_string)).convert("RGB"))
            for e in acc.Images(tag)}


@pytest.mark.parametrize("scale", ["per_method", "per_map"])
def test_fading_maps_show_paler_only_on_the_shared_scale(mnist, tmp_path, scale):
    """Weights constant, then halved: the gradient map is constant, then half as large."""
    w = np.random.default_rng(0).normal(size=(784, 10)).astype(np.float32)
    images, labels = mnist.eval_images[:3], mnist.eval_labels[:3]
    writer = TensorBoardWriter(tmp_path)
    callback = AttributionCallback(linear_model, images, labels, writer, ["gradient"],
                                   schedule="at:0", scale=scale, history_dir=str(tmp_path / "h"))
    callback.on_train_begin({"w": w})
    for step, factor in ((1, 1.0), (2, 0.5)):
        callback.fire(step, {"w": jnp.asarray(w * factor)})
    callback.on_train_end({"w": w})
    writer.close()
    cells = 3 * (2 * 28 + 2)  # input, map, overlay; the row labels (confidence) left of them
    grid = {step: image[:, -cells:] for step, image in _images(tmp_path,
                                                                "methods/gradient").items()}
    np.testing.assert_array_equal(grid[0], grid[1])  # A constant map: the same image.
    assert np.array_equal(grid[0], grid[2]) == (scale == "per_map")
    if scale == "per_method":  # Paler: closer to the white of zero.
        assert grid[2].astype(int).sum() > grid[0].astype(int).sum()
    history = load_history(tmp_path / "h")
    np.testing.assert_allclose(history.maps["gradient"][2], 0.5 * history.maps["gradient"][0],
                               rtol=1e-3, atol=1e-7)
    assert history.settings["scale"] == scale
    with open(tmp_path / "h" / "firings.jsonl") as f:
        assert [json.loads(line)["step"] for line in f] == [0, 1, 2]
    assert len(glob.glob(str(tmp_path / "events.out.tfevents.*"))) == 1
